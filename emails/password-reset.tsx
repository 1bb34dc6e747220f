import { Text } from "@react-email/components";
import Layout, { ActionLink, styles } from "./layout";

export type PasswordResetProps = { link: string };

export const subject = (_props: PasswordResetProps) => "Reset your password";

export default function PasswordReset({ link }: PasswordResetProps) {
  return (
    <Layout preview="Reset your password">
      <Text style={styles.text}>We received a request to reset your password. Click the button below to choose a new one:</Text>
      <ActionLink href={link} label="Reset password" />
      <Text style={styles.muted}>
        This link expires in 1 hour. If you did not request a password reset, you can ignore this email; your password
        will not change.
      </Text>
    </Layout>
  );
}
