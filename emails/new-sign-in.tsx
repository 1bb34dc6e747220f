import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

export type NewSignInProps = { ip: string | null; userAgent: string | null; at: string };

export const subject = (_props: NewSignInProps) => "New sign-in to your account";

export default function NewSignIn({ ip, userAgent, at }: NewSignInProps) {
  return (
    <Layout preview="New sign-in to your account">
      <Text style={styles.text}>There was a new sign-in to your account.</Text>
      <Text style={styles.text}>
        Time: {at}
        <br />
        IP address: {ip ?? "unknown"}
        <br />
        Device: {userAgent ?? "unknown"}
      </Text>
      <Text style={styles.muted}>
        If this was you, no action is needed. If not, change your password and sign out of your other sessions.
      </Text>
    </Layout>
  );
}
