import { inArray, lt, or, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { AuthContext } from "./context";
import type { Db } from "./db";
import { auditEvents, sessions } from "./db/schema";

const DAY_MS = 86_400_000;
/** Ended things are kept a day more, so that an answer about them (a replayed refresh token, a late link) stays the same. */
export const RETENTION_GRACE_MS = DAY_MS;
const BATCH_SIZE = 1000;

/**
 * Deletes the rows of `table` that `where` picks, a batch at a time, and answers how many went. Each batch takes its
 * rows with FOR UPDATE SKIP LOCKED, so instances running their maintenance at once share the work instead of waiting
 * on each other, and no statement holds many locks for long.
 */
export async function deleteInBatches(db: Db, table: PgTable, id: PgColumn, where: SQL | undefined): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = db.select({ id }).from(table).where(where).limit(BATCH_SIZE).for("update", { skipLocked: true });
    const gone = await db.delete(table).where(inArray(id, batch)).returning({ id });
    total += gone.length;
    if (gone.length < BATCH_SIZE) return total;
  }
}

/** A plugin's retention as a maintenance task: `sweep` answers how many rows of `table` went, logged when any did. */
export const retentionTask = (ctx: AuthContext, table: string, sweep: (ctx: AuthContext) => Promise<number>) => async (): Promise<void> => {
  const deleted = await sweep(ctx);
  if (deleted > 0) ctx.logger.info("retention", { [table]: deleted });
};

/** The time before which something that ended is past its day of grace. */
export const retentionCutoff = (ctx: AuthContext): Date => new Date(ctx.clock.now().getTime() - RETENTION_GRACE_MS);

/**
 * The core's retention, a maintenance task: sessions that expired, were revoked, or went idle more than a day ago
 * (no token of theirs works any more), and audit rows older than AUDIT_RETENTION_DAYS (0 keeps them all). Plugins
 * register the clean-up of their own tables the same way, through their `maintenance` hook.
 */
export function coreRetention(ctx: AuthContext) {
  return async (): Promise<void> => {
    const now = ctx.clock.now().getTime();
    const graced = new Date(now - RETENTION_GRACE_MS);
    const idle = new Date(now - ctx.config.SESSION_IDLE_TIMEOUT_S * 1000 - RETENTION_GRACE_MS);
    const over = or(lt(sessions.expiresAt, graced), lt(sessions.revokedAt, graced), lt(sessions.lastUsedAt, idle));
    const ended = await deleteInBatches(ctx.db, sessions, sessions.id, over);
    let audited = 0;
    if (ctx.config.AUDIT_RETENTION_DAYS > 0) {
      const cutoff = new Date(now - ctx.config.AUDIT_RETENTION_DAYS * DAY_MS);
      audited = await deleteInBatches(ctx.db, auditEvents, auditEvents.id, lt(auditEvents.createdAt, cutoff));
    }
    if (ended + audited > 0) ctx.logger.info("retention", { sessions: ended, auditEvents: audited });
  };
}
