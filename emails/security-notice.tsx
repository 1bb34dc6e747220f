import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

export type SecurityNoticeProps = { event: string };

export const subject = (_props: SecurityNoticeProps) => "Security alert for your account";

export default function SecurityNotice({ event }: SecurityNoticeProps) {
  return (
    <Layout preview={event}>
      <Text style={styles.text}>{event}</Text>
      <Text style={styles.muted}>
        If you made this change, no action is needed. If you did not, change your password right away and contact
        support.
      </Text>
    </Layout>
  );
}
