import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

export type EmailChangedProps = { newEmail: string };

export const subject = (_props: EmailChangedProps) => "Your email address was changed";

export default function EmailChanged({ newEmail }: EmailChangedProps) {
  return (
    <Layout preview="Your email address was changed">
      <Text style={styles.text}>The email address of your account was changed to {newEmail}.</Text>
      <Text style={styles.muted}>
        If you made this change, no action is needed. If you did not, contact support immediately to secure your
        account.
      </Text>
    </Layout>
  );
}
