import type { AuthContext } from "./context";
import type { Db } from "./db";
import type { UserRow } from "./db/schema";
import type { RequestMeta } from "./request";

/** How many ways into the account the enabled plugins give the user (e.g. to refuse removing the last one). */
export async function countSignInMethods(ctx: AuthContext, userId: string, db: Db): Promise<number> {
  let total = 0;
  for (const kind of ctx.hooks.credentials) total += await kind.countSignInMethods(userId, db);
  return total;
}

/**
 * The first proof of the mailbox for an account nobody had verified. Whoever set the account up never proved the
 * address (it may be an attacker who pre-registered the victim's email), so every way in they could have planted
 * dies: each plugin's credentials (passkeys, TOTP, linked providers), registered in `ctx.hooks.credentials`.
 * Returns how many were removed. The caller also replaces or clears the password and revokes the sessions.
 */
export async function removeUnprovenCredentials(ctx: AuthContext, userId: string, db: Db): Promise<number> {
  let removed = 0;
  for (const kind of ctx.hooks.credentials) removed += (await kind.removeUnproven?.(userId, db)) ?? 0;
  return removed;
}

/**
 * Hands an unverified account to the one who just proved its mailbox (e.g. with a magic code): its unproven
 * credentials and password die, MFA is off, and when anything had been planted every session ends.
 */
export async function claimUnverifiedAccount(ctx: AuthContext, user: UserRow, meta: RequestMeta): Promise<UserRow> {
  const claimed = await ctx.sessions.transaction(async (tx) => {
    const removed = await removeUnprovenCredentials(ctx, user.id, tx);
    const row = await ctx.users.update(user.id, { emailVerified: true, passwordHash: null, mfaEnabled: false }, tx);
    await ctx.events.emit(
      tx,
      { type: "user.updated", data: { user: ctx.users.toPublic(row) } },
      ...(user.mfaEnabled ? [{ type: "mfa.disabled" as const, data: { userId: user.id } }] : []),
    );
    const planted = user.passwordHash !== null || user.mfaEnabled || removed > 0;
    // When something had been planted every session ends, in the same transaction as the rest of the claim.
    return { row, planted, revoked: planted ? await ctx.sessions.revokeAll(user.id, undefined, "unverified_account_claimed", tx) : 0 };
  });
  if (claimed.planted) {
    await ctx.audit.record({ type: "unverified_account_claimed", userId: user.id, meta, data: { sessionsRevoked: claimed.revoked } });
    if (user.mfaEnabled) await ctx.audit.record({ type: "mfa_disabled", userId: user.id, meta, data: { method: "unverified_account_claimed" } });
  }
  return claimed.row;
}
