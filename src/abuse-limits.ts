import type { AuthContext } from "./context";
import type { RequestMeta } from "./request";

type Limited = Pick<AuthContext, "rateLimit">;

const ipOf = (meta: RequestMeta) => meta.ip ?? "unknown";

/**
 * One IP may make only so many accounts, guests and sign-in code requests (`RATE_LIMIT_SIGNUP_IP`): without it a
 * script fills the users table, or sprays sign-in codes across any number of addresses.
 */
export async function limitSignUp(ctx: Limited, meta: RequestMeta): Promise<void> {
  await ctx.rateLimit.hit("RATE_LIMIT_SIGNUP_IP", ipOf(meta));
}

/**
 * Counts a code or a link a request asks the server to mail (sign-in, verification and email-change codes, reset
 * links) against the requesting IP (`RATE_LIMIT_MAIL_IP`). Their recipient's address has its own cap already,
 * `RATE_LIMIT_CODE_EMAIL`, hit by the caller. Counted whether or not the address has an account (the answer must not
 * tell), before anything is sent. Security notices to an account's own owner (password or email changed, a new
 * sign-in, a way in added or removed) never come through here: they are never held back.
 */
export async function limitMailFromIp(ctx: Limited, meta: RequestMeta): Promise<void> {
  await ctx.rateLimit.hit("RATE_LIMIT_MAIL_IP", ipOf(meta));
}

/**
 * Counts an invitation mailed to `recipient`: against the requesting IP like any mail, and against the recipient's
 * address (`RATE_LIMIT_MAIL_RECIPIENT`) whatever the IPs asking, so a team (a guest can make one) cannot mail one
 * person invitation after invitation.
 */
export async function limitInvitationMail(ctx: Limited, meta: RequestMeta, recipient: string): Promise<void> {
  await limitMailFromIp(ctx, meta);
  await ctx.rateLimit.hit("RATE_LIMIT_MAIL_RECIPIENT", recipient.toLowerCase());
}
