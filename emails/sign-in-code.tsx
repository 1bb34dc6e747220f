import { Text } from "@react-email/components";
import { CODE_TTL_S } from "../src/codes";
import Layout, { styles } from "./layout";

const CODE_TTL_MINUTES = CODE_TTL_S / 60;

export type SignInCodeProps = { code: string };

export const subject = (_props: SignInCodeProps) => "Your sign-in code";

export default function SignInCode({ code }: SignInCodeProps) {
  return (
    <Layout preview="Your sign-in code">
      <Text style={styles.text}>Use this code to sign in:</Text>
      <Text style={styles.code}>{code}</Text>
      <Text style={styles.muted}>{`The code expires in ${CODE_TTL_MINUTES} minutes and works once. If you did not try to sign in, you can ignore this email. Never share this code with anyone.`}</Text>
    </Layout>
  );
}
