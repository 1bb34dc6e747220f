import { Text } from "@react-email/text";
import { CODE_TTL_S } from "../src/codes";
import Layout, { styles } from "./layout";

const CODE_TTL_MINUTES = CODE_TTL_S / 60;

export type VerifyEmailProps = { code: string };

export const subject = (_props: VerifyEmailProps) => "Your verification code";

export default function VerifyEmail({ code }: VerifyEmailProps) {
  return (
    <Layout preview="Your verification code">
      <Text style={styles.text}>Use this code to verify your email address:</Text>
      <Text style={styles.code}>{code}</Text>
      <Text style={styles.muted}>{`The code expires in ${CODE_TTL_MINUTES} minutes and works once. If you did not request it, you can ignore this email.`}</Text>
    </Layout>
  );
}
