import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

// biome-ignore lint/complexity/noBannedTypes: template takes no props
export type PasswordChangedProps = {};

export const subject = (_props: PasswordChangedProps) => "Your password was changed";

export default function PasswordChanged(_props: PasswordChangedProps) {
  return (
    <Layout preview="Your password was changed">
      <Text style={styles.text}>The password of your account was changed.</Text>
      <Text style={styles.muted}>
        If you made this change, no action is needed. If you did not, reset your password right away and contact
        support.
      </Text>
    </Layout>
  );
}
