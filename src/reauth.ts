import { limitMailFromIp } from "./abuse-limits";
import type { AuthContext, ReauthFactor, ReauthProof } from "./context";
import type { UserRow } from "./db/schema";
import { errors } from "./errors";
import { sendEmailDetached } from "./mail";
import type { RequestMeta } from "./request";
import type { AuthInfo, TokenResponse } from "./sessions/service";

/** Codes mailed by POST /auth/reauth/code are bound to the user: one account's code proves nothing for another. */
const REAUTH_CODE_PURPOSE = "reauth";

const impersonationRefused = () => errors.forbidden("An impersonation token cannot confirm the user's identity");

const noFactor = () =>
  errors.validation([{ path: "", message: "one of password, totpCode, recoveryCode, emailCode, or challengeId with passkeyResponse is required" }]);

async function signedInUser(ctx: AuthContext, auth: AuthInfo): Promise<UserRow> {
  if (auth.act) throw impersonationRefused();
  const user = await ctx.users.findById(auth.userId);
  if (!user) throw errors.sessionRevoked();
  return user;
}

/** The emailed factor is the core's own: every account with an address has it, whatever plugins are on. */
export function emailCodeFactor(ctx: AuthContext): ReauthFactor {
  return {
    field: "emailCode",
    strong: false,
    async verify(user, proof) {
      if (!(await ctx.codes.consume(REAUTH_CODE_PURPOSE, user.id, String(proof.emailCode)))) throw errors.invalidCode();
    },
  };
}

/** Factors are checked cheapest to lose first: a wrong password spends nothing, a checked code is used up. */
const CHECK_ORDER: ReauthFactor["field"][] = ["password", "passkeyResponse", "totpCode", "emailCode", "recoveryCode"];

/**
 * Renews the session's proof of a factor (`auth_time`) after checking every factor the body carries, and rotates its
 * refresh token as a refresh does. An account with MFA on needs a second factor: its password or its mailbox alone is
 * what a phisher is most likely to have. The factors are checked after the app's claims hook, so a hook that fails
 * spends no one-time code.
 */
export async function reauthenticate(ctx: AuthContext, auth: AuthInfo, proof: ReauthProof, meta: RequestMeta): Promise<TokenResponse> {
  const user = await signedInUser(ctx, auth);
  if (proof.challengeId !== undefined && proof.passkeyResponse === undefined) {
    throw errors.validation([{ path: "passkeyResponse", message: "is required with challengeId" }]);
  }
  if (proof.passkeyResponse !== undefined && proof.challengeId === undefined) {
    throw errors.validation([{ path: "challengeId", message: "is required with passkeyResponse" }]);
  }
  const given = ctx.hooks.reauthFactors
    .filter((factor) => proof[factor.field] !== undefined)
    .sort((a, b) => CHECK_ORDER.indexOf(a.field) - CHECK_ORDER.indexOf(b.field));
  const unavailable = CHECK_ORDER.find((field) => proof[field] !== undefined && !given.some((factor) => factor.field === field));
  if (unavailable) throw errors.validation([{ path: unavailable, message: "is not a factor this server offers" }]);
  if (given.length === 0) throw noFactor();
  if (user.mfaEnabled && !given.some((factor) => factor.strong)) {
    throw errors.validation([{ path: "totpCode", message: "MFA is on: a TOTP code, a recovery code or a passkey is required" }]);
  }
  const renewed = await ctx.sessions.reissue(auth, {
    reauthenticated: true,
    check: async () => {
      for (const factor of given) await factor.verify(user, proof, meta);
    },
  });
  await ctx.audit.record({
    type: "reauthenticated",
    userId: user.id,
    meta,
    data: { sessionId: auth.sessionId, methods: given.map((factor) => factor.field) },
  });
  return renewed;
}

/** Mails the signed-in user a 6-digit code for POST /auth/reauth (`emailCode`); capped like every other mailed code. */
export async function sendReauthCode(ctx: AuthContext, auth: AuthInfo, meta: RequestMeta): Promise<void> {
  const user = await signedInUser(ctx, auth);
  if (!user.email) throw errors.validation([{ path: "", message: "the account has no email address to send a code to" }]);
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", user.email);
  await limitMailFromIp(ctx, meta);
  const code = await ctx.codes.issue(REAUTH_CODE_PURPOSE, user.id);
  await sendEmailDetached(ctx, user.email, "sign-in-code", { code, purpose: "reauth" });
  await ctx.audit.record({ type: "reauth_code_requested", userId: user.id, meta });
}
