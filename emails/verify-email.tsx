import { Text } from "@react-email/components";
import Layout, { styles } from "./layout";

export type VerifyEmailProps = { code: string };

export const subject = (_props: VerifyEmailProps) => "Your verification code";

export default function VerifyEmail({ code }: VerifyEmailProps) {
  return (
    <Layout preview="Your verification code">
      <Text style={styles.text}>Use this code to verify your email address:</Text>
      <Text style={styles.code}>{code}</Text>
      <Text style={styles.muted}>The code expires soon. If you did not request it, you can ignore this email.</Text>
    </Layout>
  );
}
