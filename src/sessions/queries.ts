import { and, eq, gt, isNull, type Placeholder, type SQL, sql } from "drizzle-orm";
import type { Db } from "../db";
import { type SessionRow, sessions, users } from "../db/schema";
import type { TeamClaim } from "../tokens/access";
import { type PublicUserRow, publicUserColumns } from "../users";

/**
 * The session lookups of the hot paths (authenticate, refresh, GET /auth/session), prepared once per handle; a query
 * handed another handle (a transaction) is built as usual.
 */
/** What GET /auth/session answers from, and all an instance keeps per session: no secret, no password hash. */
export type CurrentSession = {
  session: Pick<SessionRow, "id" | "userId" | "createdAt" | "expiresAt" | "amr">;
  user: PublicUserRow;
};

/** The team a session acts for, as an access token claims it. */
export const teamOf = (session: Pick<SessionRow, "teamId" | "teamRole">): TeamClaim | undefined =>
  session.teamId && session.teamRole ? { id: session.teamId, role: session.teamRole } : undefined;

/**
 * The row a presented refresh token names, while that token is its live generation: its session id, generation and
 * secret's hash as placeholders sid, gen, hash, or as the columns of a batch (`v.sid`, `v.gen`, `v.hash`).
 */
export const presentedGeneration = (
  presented: Record<"sid" | "gen" | "hash", SQL | Placeholder> = {
    sid: sql.placeholder("sid"),
    gen: sql.placeholder("gen"),
    hash: sql.placeholder("hash"),
  },
) => [eq(sessions.id, presented.sid), eq(sessions.refreshGen, presented.gen), eq(sessions.refreshHash, presented.hash), isNull(sessions.revokedAt)];

/**
 * RATE_LIMIT_REFRESH_SESSION, counted on the session's row: a presentation counts in the window open since after
 * `cutoff` (now minus the window's length), or opens a new one at `now`.
 */
export const refreshWindow = {
  /** This presentation is within the limit: no window open, or fewer than `max` counted in it. */
  room: (cutoff: SQL | Placeholder, max: SQL | Placeholder) =>
    sql`(${sessions.refreshWindowAt} IS NULL OR ${sessions.refreshWindowAt} <= ${cutoff} OR ${sessions.refreshWindowHits} < ${max})`,
  /** The columns that count one presentation. */
  count: (cutoff: SQL | Placeholder, now: SQL | Placeholder) => ({
    refreshWindowHits: sql`CASE WHEN ${sessions.refreshWindowAt} > ${cutoff} THEN ${sessions.refreshWindowHits} + 1 ELSE 1 END`,
    refreshWindowAt: sql`CASE WHEN ${sessions.refreshWindowAt} > ${cutoff} THEN ${sessions.refreshWindowAt} ELSE ${now} END`,
  }),
};

export function prepareQueries(db: Db) {
  return {
    current: db
      .select({
        session: { id: sessions.id, userId: sessions.userId, createdAt: sessions.createdAt, expiresAt: sessions.expiresAt, amr: sessions.amr },
        user: publicUserColumns,
      })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, sql.placeholder("sid")), isNull(sessions.revokedAt)))
      .limit(1)
      .prepare("sessions_current"),
    /** Starts a session: built once, as building an insert costs more than sending it. */
    create: db
      .insert(sessions)
      .values({
        id: sql.placeholder("id"),
        userId: sql.placeholder("userId"),
        amr: sql.placeholder("amr"),
        teamId: sql.placeholder("teamId"),
        teamRole: sql.placeholder("teamRole"),
        ip: sql.placeholder("ip"),
        userAgent: sql.placeholder("userAgent"),
        createdAt: sql.placeholder("now"),
        lastUsedAt: sql.placeholder("now"),
        authTime: sql.placeholder("now"),
        expiresAt: sql.placeholder("expiresAt"),
        refreshHash: sql.placeholder("refreshHash"),
        refreshIssuedAt: sql.placeholder("refreshIssuedAt"),
        refreshExpiresAt: sql.placeholder("refreshExpiresAt"),
        refreshSealedNext: sql.placeholder("refreshSealedNext"),
      })
      .prepare("sessions_create"),
    /**
     * Rotates the live refresh tokens of a batch of sessions (`batch`: a JSON array of RotationInput, see
     * RefreshChains): one prepared update of one row each, which also hands back each one's user, with `i`, the index
     * of the presentation that rotated it. Only the live generation of a live session rotates; concurrent
     * presentations queue on the row (or, within one batch, one of them is used), the first wins and the others find
     * the generation moved on. The batch comes sorted by session id, so that two batches sharing rows usually lock them
     * in the same order; a deadlock the plan still allows fails the batch, and RefreshChains retries each alone. A
     * rotation counts against the session's refresh limit in the same write; one over the limit does not rotate.
     */
    rotate: db
      .update(sessions)
      .set({
        refreshGen: sql`${sessions.refreshGen} + 1`,
        refreshHash: sql`v.next_hash`,
        refreshIssuedAt: sql`v.now`,
        refreshExpiresAt: sql`v.next_expires_at`,
        refreshSealedNext: sql`v.sealed_next`,
        lastUsedAt: sql`v.now`,
        ...refreshWindow.count(sql`v.window_cutoff`, sql`v.now`),
      })
      .from(
        sql`${users}, jsonb_to_recordset(${sql.placeholder("batch")}::jsonb) AS v(i int, sid uuid, gen int, hash text, next_hash text, next_expires_at timestamptz, sealed_next text, now timestamptz, idle_cutoff timestamptz, window_cutoff timestamptz, max_hits int)`,
      )
      .where(
        and(
          ...presentedGeneration({ sid: sql`v.sid`, gen: sql`v.gen`, hash: sql`v.hash` }),
          eq(users.id, sessions.userId),
          gt(sessions.expiresAt, sql`v.now`),
          gt(sessions.refreshExpiresAt, sql`v.now`),
          gt(sessions.lastUsedAt, sql`v.idle_cutoff`),
          refreshWindow.room(sql`v.window_cutoff`, sql`v.max_hits`),
        ),
      )
      .returning({
        i: sql<number>`v.i`,
        session: {
          id: sessions.id,
          amr: sessions.amr,
          teamId: sessions.teamId,
          teamRole: sessions.teamRole,
          refreshGen: sessions.refreshGen,
          authTime: sessions.authTime,
        },
        user: publicUserColumns,
      })
      .prepare("sessions_rotate"),
  };
}
