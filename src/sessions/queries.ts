import { and, eq, gt, isNull, sql } from "drizzle-orm";
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

/** The row a presented refresh token names, while that token is its live generation (placeholders sid, gen, hash). */
export const presentedGeneration = () => [
  eq(sessions.id, sql.placeholder("sid")),
  eq(sessions.refreshGen, sql.placeholder("gen")),
  eq(sessions.refreshHash, sql.placeholder("hash")),
  isNull(sessions.revokedAt),
];

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
     * Rotates a session's live refresh token: one prepared single-row update, which also hands back the user. Only
     * the live generation of a live session rotates; concurrent presentations queue on the row, the first wins and
     * the others find the generation moved on. Times are ISO strings (placeholders skip the column's encoding).
     */
    rotate: db
      .update(sessions)
      .set({
        refreshGen: sql`${sessions.refreshGen} + 1`,
        refreshHash: sql`${sql.placeholder("nextHash")}`,
        refreshIssuedAt: sql`${sql.placeholder("now")}`,
        refreshExpiresAt: sql`${sql.placeholder("nextExpiresAt")}`,
        refreshSealedNext: sql`${sql.placeholder("sealedNext")}`,
        lastUsedAt: sql`${sql.placeholder("now")}`,
      })
      .from(users)
      .where(
        and(
          ...presentedGeneration(),
          gt(sessions.expiresAt, sql.placeholder("now")),
          gt(sessions.refreshExpiresAt, sql.placeholder("now")),
          gt(sessions.lastUsedAt, sql.placeholder("idleCutoff")),
          eq(users.id, sessions.userId),
        ),
      )
      .returning({
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
