import { lt, or } from "drizzle-orm";
import type { AuthContext } from "./context";
import { auditEvents, sessions } from "./db/schema";

const DAY_MS = 86_400_000;
/** Ended things are kept a day more: an answer about them (a replayed refresh token, a late link) stays the same. */
export const RETENTION_GRACE_MS = DAY_MS;

/**
 * The core's retention, run by the maintenance job: audit rows older than AUDIT_RETENTION_DAYS (0 keeps them all), and
 * sessions that expired, went idle or were revoked. Plain conditional DELETEs: every instance may run them at once.
 */
export function coreRetention(ctx: AuthContext) {
  return async (): Promise<void> => {
    const now = ctx.clock.now().getTime();
    const graced = new Date(now - RETENTION_GRACE_MS);
    const idle = new Date(now - ctx.config.SESSION_IDLE_TIMEOUT_S * 1000 - RETENTION_GRACE_MS);
    const ended = await ctx.db
      .delete(sessions)
      .where(or(lt(sessions.expiresAt, graced), lt(sessions.revokedAt, graced), lt(sessions.lastUsedAt, idle)))
      .returning({ id: sessions.id });
    let audited = 0;
    if (ctx.config.AUDIT_RETENTION_DAYS > 0) {
      const cutoff = new Date(now - ctx.config.AUDIT_RETENTION_DAYS * DAY_MS);
      audited = (await ctx.db.delete(auditEvents).where(lt(auditEvents.createdAt, cutoff)).returning({ id: auditEvents.id })).length;
    }
    const revocations = await ctx.sessions.deleteExpiredRevocations();
    if (ended.length + audited + revocations > 0) ctx.logger.info("retention", { sessions: ended.length, auditEvents: audited, revocations });
  };
}
