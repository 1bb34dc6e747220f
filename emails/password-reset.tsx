import { Text } from "@react-email/text";
import Layout, { ActionLink, styles } from "./layout";

/** `newAccount`: an admin made the account without a password, and this link (valid `days` days) sets the first one. */
export type PasswordResetProps = { link: string; newAccount?: { days: number } };

export const subject = (props: PasswordResetProps) => (props.newAccount ? "Choose a password for your new account" : "Reset your password");

export default function PasswordReset({ link, newAccount }: PasswordResetProps) {
  if (newAccount) {
    return (
      <Layout preview="Choose a password for your new account">
        <Text style={styles.text}>An account was made for you. Click the button below to choose its password:</Text>
        <ActionLink href={link} label="Choose a password" />
        <Text style={styles.muted}>This link expires in {newAccount.days} days and works once.</Text>
      </Layout>
    );
  }
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
