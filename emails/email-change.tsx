import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

export type EmailChangeProps = { code: string; newEmail: string };

export const subject = (_props: EmailChangeProps) => "Confirm your new email address";

export default function EmailChange({ code, newEmail }: EmailChangeProps) {
  return (
    <Layout preview="Confirm your new email address">
      <Text style={styles.text}>
        Someone asked to change the email address of an account to {newEmail}. Use this code to confirm the change:
      </Text>
      <Text style={styles.code}>{code}</Text>
      <Text style={styles.muted}>If you did not request this change, you can ignore this email.</Text>
    </Layout>
  );
}
