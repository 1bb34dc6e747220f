import type { AuthContext } from "./context";
import type { RequestMeta } from "./request";

type Limited = Pick<AuthContext, "rateLimit">;

/**
 * One IP may make only so many accounts, guests and sign-in code requests (`RATE_LIMIT_SIGNUP_IP`): without it a
 * script fills the users table, or sprays sign-in codes across any number of addresses.
 */
export async function limitSignUp(ctx: Limited, meta: RequestMeta): Promise<void> {
  await ctx.rateLimit.hit("RATE_LIMIT_SIGNUP_IP", meta.ip ?? "unknown");
}

/**
 * Counts a mail that a request asks the server to send to `recipient` (a code, a link, an invitation), against the
 * requesting IP (`RATE_LIMIT_MAIL_IP`) and the recipient's address (`RATE_LIMIT_MAIL_RECIPIENT`), so the server can be
 * made to mail bomb neither from one client nor, from many, one inbox. Counted whether or not the address has an
 * account (the answer must not tell), before anything is sent. Security notices to an account's own owner (password
 * or email changed, a new sign-in, a factor added or removed) never come through here: they are never held back.
 */
export async function limitMailTo(ctx: Limited, meta: RequestMeta, recipient: string): Promise<void> {
  await ctx.rateLimit.hit("RATE_LIMIT_MAIL_IP", meta.ip ?? "unknown");
  await ctx.rateLimit.hit("RATE_LIMIT_MAIL_RECIPIENT", recipient.toLowerCase());
}
