import type { AuthContext } from "../../src/context";
import type { UserRow } from "../../src/db/schema";
import { errors } from "../../src/errors";
import type { RequestMeta } from "../../src/request";
import { sendSecurityNotice } from "./service";

/**
 * Runs one guess of a user's second factor (a TOTP or recovery code) under RATE_LIMIT_MFA_USER, counted per account
 * across every mfaToken, reauthentication and signed-in check: the per-token cap alone let anyone with the password
 * ask for token after token. The guess is reserved before `check` runs (parallel guesses all count), a right answer
 * clears the count (the owner got in), and the wrong guess that uses up the window mails the owner once, whatever
 * other mail limits say: someone who has the password is trying codes. Past the cap: 429 RATE_LIMITED.
 */
export async function guessSecondFactor<T>(
  ctx: AuthContext,
  user: UserRow,
  meta: RequestMeta,
  check: () => Promise<T | null>,
): Promise<T | null> {
  const guess = await ctx.rateLimit.count("RATE_LIMIT_MFA_USER", user.id);
  if (guess.over) throw errors.rateLimited(guess.retryAfterS);
  const result = await check();
  if (result !== null) {
    await ctx.rateLimit.clear("RATE_LIMIT_MFA_USER", user.id);
    return result;
  }
  if (guess.remaining === 0) {
    await ctx.audit.record({ type: "mfa_guesses_capped", userId: user.id, meta });
    await sendSecurityNotice(
      ctx,
      user,
      "Several wrong two-factor codes were entered for your account, so further codes are refused for a while. " +
        "If this was not you, someone may know your password: change it.",
    );
  }
  return null;
}
