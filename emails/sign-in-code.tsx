import { Text } from "@react-email/text";
import { CODE_TTL_S } from "../src/codes";
import Layout, { styles } from "./layout";

const CODE_TTL_MINUTES = CODE_TTL_S / 60;

/** `reauth`: the code confirms a signed-in user before a change to how they sign in (POST /auth/reauth). */
export type SignInCodeProps = { code: string; purpose?: "sign-in" | "reauth" };

export const subject = ({ purpose }: SignInCodeProps) => (purpose === "reauth" ? "Your confirmation code" : "Your sign-in code");

export default function SignInCode({ code, purpose }: SignInCodeProps) {
  if (purpose === "reauth") {
    return (
      <Layout preview="Your confirmation code">
        <Text style={styles.text}>Use this code to confirm it is you before changing how you sign in:</Text>
        <Text style={styles.code}>{code}</Text>
        <Text style={styles.muted}>
          The code expires soon. If you did not ask for it, someone may be signed in to your account: sign out of your
          other sessions and change your password. Never share this code with anyone.
        </Text>
      </Layout>
    );
  }
  return (
    <Layout preview="Your sign-in code">
      <Text style={styles.text}>Use this code to sign in:</Text>
      <Text style={styles.code}>{code}</Text>
      <Text style={styles.muted}>{`The code expires in ${CODE_TTL_MINUTES} minutes and works once. If you did not try to sign in, you can ignore this email. Never share this code with anyone.`}</Text>
    </Layout>
  );
}
