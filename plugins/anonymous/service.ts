import { limitSignUp } from "../../src/abuse-limits";
import { and, asc, eq, gte, inArray, lt, notExists, sql } from "drizzle-orm";
import type { AuthContext } from "../../src/context";
import { sessions, users } from "../../src/db/schema";
import type { RequestMeta } from "../../src/request";
import type { TokenResponse } from "../../src/sessions/service";

export const ANONYMOUS_AMR = ["anon"];

/** Guests deleted per statement: small enough to keep locks and WAL short, large enough to clear a backlog. */
export const SWEEP_BATCH_SIZE = 500;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Creates a guest (no email, no password) and signs it in. */
export async function signInAsGuest(ctx: AuthContext, meta: RequestMeta): Promise<TokenResponse> {
  await ctx.rateLimit.hit("RATE_LIMIT_ANONYMOUS_IP", meta.ip ?? "unknown");
  await limitSignUp(ctx, meta);
  await ctx.beforeSignUp({ email: null, method: "anonymous", ip: meta.ip, userAgent: meta.userAgent });
  const guest = await ctx.events.atomic(async (tx) => {
    const row = await ctx.users.create({ isAnonymous: true, createdAt: ctx.clock.now() }, tx);
    await ctx.events.emit(tx, { type: "user.created", data: { user: ctx.users.toPublic(row) } });
    return row;
  });
  await ctx.audit.record({ type: "sign_up", userId: guest.id, meta, data: { method: "anonymous" } });
  const result = await ctx.signIn(guest, { amr: ANONYMOUS_AMR, meta, method: "anonymous", madeNow: true });
  // A guest made a moment ago cannot have turned MFA on, so signIn always answers with tokens here.
  if ("mfaRequired" in result) throw new Error("a new guest cannot have MFA on");
  return result;
}

/**
 * Deletes guests unused (no sign-in, no session used) for ANONYMOUS_TTL_DAYS, in batches until none is left; their sessions
 * go with them (foreign keys cascade). Instances sweeping at once skip each other's locked rows instead of waiting, and
 * a guest upgraded while the sweep runs is re-checked under the lock, so it is never deleted. Returns how many went.
 */
export async function sweepStaleGuests(ctx: AuthContext, batchSize = SWEEP_BATCH_SIZE): Promise<number> {
  const cutoff = new Date(ctx.clock.now().getTime() - ctx.config.ANONYMOUS_TTL_DAYS * DAY_MS);
  let total = 0;
  for (;;) {
    const stale = ctx.db
      .select({ id: users.id })
      .from(users)
      .where(
        and(
          eq(users.isAnonymous, true),
          lt(users.createdAt, cutoff),
          // Use is recorded on sessions alone (a sign-in or refresh writes the session row), so it is read from there.
          notExists(ctx.db.select({ one: sql`1` }).from(sessions).where(and(eq(sessions.userId, users.id), gte(sessions.lastUsedAt, cutoff)))),
        ),
      )
      .orderBy(asc(users.createdAt))
      .limit(batchSize)
      .for("update", { skipLocked: true });
    const deleted = await ctx.events.atomic(async (tx) => {
      const gone = await tx.delete(users).where(inArray(users.id, stale)).returning({ id: users.id, email: users.email });
      await ctx.events.emit(tx, ...gone.map((user) => ({ type: "user.deleted" as const, data: { user } })));
      return gone;
    });
    total += deleted.length;
    if (deleted.length < batchSize) return total;
  }
}
