import { and, eq } from "drizzle-orm";
import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import type { UserRow } from "../../src/db/schema";
import { errors } from "../../src/errors";
import { mfaError } from "./errors";
import { sendEmailDetached } from "../../src/mail";
import { notifySignInMethodChanged } from "../../src/notices";
import type { RequestMeta } from "../../src/request";
import type { TokenResponse } from "../../src/sessions/service";
import { mfaTokenInvalid, type OpenedMfaToken, openMfaToken, recordWrongAnswer, spendMfaToken } from "./challenge";
import { guessSecondFactor } from "./guesses";
import { looksLikeRecoveryCode, replaceRecoveryCodes, spendRecoveryCode } from "./recovery";
import { passkeys, recoveryCodes, totpSecrets } from "./schema";
import { enrollTotp, mfaAlreadyEnabled, spendTotpCode, type TotpEnrollment } from "./totp";

/** Wrong codes a signed-in user may send to confirm, disable or regenerate, per window, before 429. */
const ACCOUNT_CODE_ATTEMPTS = 5;
const ACCOUNT_CODE_WINDOW_S = 900;

const mfaNotEnabled = () => mfaError("MFA_NOT_ENABLED");

async function requireUser(ctx: AuthContext, userId: string): Promise<UserRow> {
  const user = await ctx.users.findById(userId);
  if (!user) throw errors.unauthorized();
  return user;
}

/**
 * Tells the account owner about a change to how they sign in. Rendered here, sent in the background: a slow SMTP
 * server must not hold up the answer, and a failure is logged rather than undoing a change already made.
 */
export async function sendSecurityNotice(ctx: AuthContext, user: UserRow, event: string): Promise<void> {
  await sendEmailDetached(ctx, user.email, "security-notice", { event });
}

/**
 * Codes sent by a signed-in user are capped too, so a stolen access token cannot brute-force its way to turning
 * MFA off. Each attempt is reserved before it is checked (parallel guesses count); a right code clears the count.
 */
async function withCodeAttempt<T>(ctx: AuthContext, userId: string, check: () => Promise<T>): Promise<T> {
  const key = `mfa-code-attempts:${userId}`;
  const attempts = await ctx.kv.incr(key, ACCOUNT_CODE_WINDOW_S);
  if (attempts.count > ACCOUNT_CODE_ATTEMPTS) throw errors.rateLimited(attempts.ttlS);
  const result = await check();
  await ctx.kv.del(key);
  return result;
}

/** Removes every TOTP secret and recovery code of the user and marks MFA off; run inside the caller's transaction. */
export async function turnMfaOff(ctx: AuthContext, tx: Db, userId: string): Promise<UserRow> {
  await tx.delete(totpSecrets).where(eq(totpSecrets.userId, userId));
  await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  return ctx.users.update(userId, { mfaEnabled: false }, tx);
}

export async function setupTotp(ctx: AuthContext, userId: string): Promise<TotpEnrollment> {
  const user = await requireUser(ctx, userId);
  if (user.mfaEnabled) throw mfaAlreadyEnabled();
  return enrollTotp(ctx, user);
}

/** Turns MFA on once the user proves their app has the secret; answers the first set of recovery codes. */
export async function confirmTotp(ctx: AuthContext, userId: string, code: string, meta: RequestMeta): Promise<{ recoveryCodes: string[] }> {
  const user = await requireUser(ctx, userId);
  if (user.mfaEnabled) throw mfaAlreadyEnabled();
  const [pending] = await ctx.db
    .select({ userId: totpSecrets.userId })
    .from(totpSecrets)
    .where(and(eq(totpSecrets.userId, userId), eq(totpSecrets.confirmed, false)))
    .limit(1);
  if (!pending) throw mfaError("MFA_SETUP_REQUIRED");
  const codes = await withCodeAttempt(ctx, userId, () =>
    ctx.db.transaction(async (tx) => {
      if (!(await spendTotpCode(ctx, userId, code, { confirmed: false, db: tx }))) throw errors.invalidCode();
      await tx.update(totpSecrets).set({ confirmed: true }).where(eq(totpSecrets.userId, userId));
      await ctx.users.update(userId, { mfaEnabled: true }, tx);
      await ctx.events.emit(tx, { type: "mfa.enabled", data: { userId } });
      return replaceRecoveryCodes(tx, userId);
    }),
  );
  await ctx.audit.record({ type: "mfa_enabled", userId, meta, data: { method: "totp" } });
  await notifySignInMethodChanged(ctx, user, { method: "totp", change: "added", name: null });
  return { recoveryCodes: codes };
}

/**
 * Runs the check of a second factor for an mfaToken: the code and the token are spent in one transaction, so a
 * right code whose token was spent concurrently is given back. A wrong code counts against the token.
 */
async function answerChallenge(
  ctx: AuthContext,
  mfaToken: string,
  meta: RequestMeta,
  spend: (tx: Db, user: UserRow, opened: OpenedMfaToken) => Promise<UserRow | null>,
): Promise<{ user: UserRow; opened: OpenedMfaToken }> {
  const opened = await openMfaToken(ctx, mfaToken);
  const user = await ctx.users.findById(opened.userId);
  if (!user?.mfaEnabled) {
    await spendMfaToken(ctx, opened.tokenHash);
    throw mfaTokenInvalid();
  }
  const signedIn = await guessSecondFactor(ctx, user, meta, () =>
    ctx.db.transaction(async (tx) => {
      const after = await spend(tx, user, opened);
      if (!after) return null;
      if (!(await spendMfaToken(ctx, opened.tokenHash))) throw mfaTokenInvalid();
      return after;
    }),
  );
  if (!signedIn) {
    await recordWrongAnswer(ctx, opened);
    await ctx.audit.record({ type: "sign_in_failed", userId: user.id, meta, data: { method: "mfa", reason: "invalid_code" } });
    await ctx.events.emit(ctx.db, { type: "user.sign_in_failed", data: { email: user.email, userId: user.id, method: "mfa", ip: meta.ip } });
    throw errors.invalidCode();
  }
  return { user: signedIn, opened };
}

async function finishSignIn(ctx: AuthContext, user: UserRow, amr: string[], meta: RequestMeta, factor: string): Promise<TokenResponse> {
  return ctx.startSession(user, { amr, meta, method: "mfa", factor });
}

/** Second step of a sign-in with a TOTP code. */
export async function verifyMfa(ctx: AuthContext, input: { mfaToken: string; code: string; meta: RequestMeta }): Promise<TokenResponse> {
  const { user, opened } = await answerChallenge(ctx, input.mfaToken, input.meta, async (tx, candidate) =>
    (await spendTotpCode(ctx, candidate.id, input.code, { confirmed: true, db: tx })) ? candidate : null,
  );
  return finishSignIn(ctx, user, [...new Set([...opened.amr, "otp"])], input.meta, "totp");
}

/**
 * Second step of a sign-in with a recovery code, for a user who lost their authenticator: the code is spent and
 * MFA is turned off, so the user signs in and sets it up again.
 */
export async function recoverWithCode(ctx: AuthContext, input: { mfaToken: string; recoveryCode: string; meta: RequestMeta }): Promise<TokenResponse> {
  const { user, opened } = await answerChallenge(ctx, input.mfaToken, input.meta, async (tx, candidate) => {
    if (!(await spendRecoveryCode(tx, candidate.id, input.recoveryCode, ctx.clock.now()))) return null;
    await ctx.events.emit(tx, { type: "mfa.disabled", data: { userId: candidate.id } });
    return turnMfaOff(ctx, tx, candidate.id);
  });
  await ctx.audit.record({ type: "mfa_disabled", userId: user.id, meta: input.meta, data: { method: "recovery_code" } });
  await notifySignInMethodChanged(ctx, user, { method: "totp", change: "removed", name: null, reason: "recovery-code" });
  // A recovery code is a one-time password (RFC 8176 "otp").
  return finishSignIn(ctx, user, [...new Set([...opened.amr, "otp"])], input.meta, "recovery_code");
}

/** Turns MFA off for a signed-in user who proves it with a TOTP code or a recovery code. */
export async function disableMfa(ctx: AuthContext, userId: string, code: string, meta: RequestMeta): Promise<void> {
  const user = await requireUser(ctx, userId);
  if (!user.mfaEnabled) throw mfaNotEnabled();
  const method = looksLikeRecoveryCode(code) ? "recovery_code" : "totp";
  await withCodeAttempt(ctx, userId, async () => {
    const done = await guessSecondFactor(ctx, user, meta, () =>
      ctx.db.transaction(async (tx) => {
        const ok =
          method === "recovery_code"
            ? await spendRecoveryCode(tx, userId, code, ctx.clock.now())
            : await spendTotpCode(ctx, userId, code, { confirmed: true, db: tx });
        if (!ok) return null;
        const off = await turnMfaOff(ctx, tx, userId);
        await ctx.events.emit(tx, { type: "mfa.disabled", data: { userId } });
        return off;
      }),
    );
    if (!done) throw errors.invalidCode();
  });
  await ctx.audit.record({ type: "mfa_disabled", userId, meta, data: { method } });
  await notifySignInMethodChanged(ctx, user, { method: "totp", change: "removed", name: null });
}

/** A new set of recovery codes for a user who proves it with a TOTP code; the old set dies. */
export async function regenerateRecoveryCodes(ctx: AuthContext, userId: string, code: string, meta: RequestMeta): Promise<{ recoveryCodes: string[] }> {
  const user = await requireUser(ctx, userId);
  if (!user.mfaEnabled) throw mfaNotEnabled();
  const codes = await withCodeAttempt(ctx, userId, async () => {
    const fresh = await guessSecondFactor(ctx, user, meta, () =>
      ctx.db.transaction(async (tx) => {
        if (!(await spendTotpCode(ctx, userId, code, { confirmed: true, db: tx }))) return null;
        return replaceRecoveryCodes(tx, userId);
      }),
    );
    if (!fresh) throw errors.invalidCode();
    return fresh;
  });
  await ctx.audit.record({ type: "mfa_recovery_codes_regenerated", userId, meta });
  await sendSecurityNotice(ctx, user, "New recovery codes were made for your account; the old ones no longer work.");
  return { recoveryCodes: codes };
}

/** Removes every second factor and passkey of a user (an unverified account's mailbox was just proven); answers how many. */
export async function removeAllFactors(userId: string, db: Db): Promise<number> {
  const secrets = await db.delete(totpSecrets).where(eq(totpSecrets.userId, userId)).returning({ userId: totpSecrets.userId });
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  const keys = await db.delete(passkeys).where(eq(passkeys.userId, userId)).returning({ id: passkeys.id });
  return secrets.length + keys.length;
}
