import type { SignInMethodChangedProps } from "../emails/sign-in-method-changed";
import type { AuthContext } from "./context";
import type { UserRow } from "./db/schema";
import { sendEmailDetached } from "./mail";

/**
 * Mails the owner that a way into their account was added or removed (a passkey, a linked provider, TOTP on or off),
 * so a change they did not make (a stolen token, a second browser) does not go unseen. A notice to the account's
 * own address: no mail limit holds it back. Sent in the background; a guest (no email) gets none.
 */
export async function notifySignInMethodChanged(
  ctx: Pick<AuthContext, "mailer" | "logger">,
  user: Pick<UserRow, "email">,
  change: SignInMethodChangedProps,
): Promise<void> {
  await sendEmailDetached(ctx, user.email, "sign-in-method-changed", change);
}
