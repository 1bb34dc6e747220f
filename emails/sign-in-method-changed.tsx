import { Text } from "@react-email/text";
import Layout, { styles } from "./layout";

/**
 * A way into the account was added or removed: a passkey, a linked provider, or TOTP (two-factor authentication on
 * or off). `name` is the passkey's name or the provider's id; `reason` says why TOTP went off when the owner did not
 * turn it off themselves (a recovery code was used to sign in).
 */
export type SignInMethodChangedProps = {
  method: "passkey" | "provider" | "totp";
  change: "added" | "removed";
  name: string | null;
  reason?: "recovery-code";
};

const PROVIDER_LABELS: Record<string, string> = {
  google: "Google",
  github: "GitHub",
  microsoft: "Microsoft",
  facebook: "Facebook",
  oidc: "single sign-on",
};

/** Subjects are fixed text: a passkey's name is chosen by whoever registered it, so it stays in the body. */
export const subject = ({ method, change }: SignInMethodChangedProps) => {
  if (method === "totp") return change === "added" ? "Two-factor authentication was turned on" : "Two-factor authentication was turned off";
  if (method === "passkey") return change === "added" ? "A passkey was added to your account" : "A passkey was removed from your account";
  return change === "added" ? "A sign-in provider was linked to your account" : "A sign-in provider was unlinked from your account";
};

function describe({ method, change, name, reason }: SignInMethodChangedProps): string {
  if (method === "totp") {
    if (reason === "recovery-code") return "A recovery code was used to sign in, and two-factor authentication was turned off for your account.";
    return `Two-factor authentication was turned ${change === "added" ? "on" : "off"} for your account.`;
  }
  if (method === "passkey") return `A passkey${name ? ` ("${name}")` : ""} was ${change === "added" ? "added to" : "removed from"} your account.`;
  const provider = (name && PROVIDER_LABELS[name]) ?? name ?? "A provider";
  return change === "added"
    ? `Your ${provider} account was linked to your account: it can now be used to sign in.`
    : `Your ${provider} account was unlinked: it can no longer be used to sign in.`;
}

export default function SignInMethodChanged(props: SignInMethodChangedProps) {
  const sentence = describe(props);
  return (
    <Layout preview={subject(props)}>
      <Text style={styles.text}>{sentence}</Text>
      <Text style={styles.muted}>
        {props.change === "added"
          ? "If you made this change, no action is needed. If you did not, someone else may be able to sign in to your account: remove it from your account settings, change your password and sign out of your other sessions."
          : "If you made this change, no action is needed. If you did not, change your password right away and review how you sign in."}
      </Text>
    </Layout>
  );
}
