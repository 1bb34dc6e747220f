import { and, eq } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { Db } from "../db";
import { sessions } from "../db/schema";
import type { TeamClaim } from "../tokens/access";
import { teamClaimEntry } from "./revocation-keys";
import type { Revocations } from "./revocations";

/** A session's team claim as its tokens carried it before a change. */
export type StaleClaim = { sessionId: string; team: TeamClaim };

/**
 * The team a session acts for (kept on the session row, claimed by its access tokens), and the revocation of claims a
 * membership change made stale. Each write takes the handle to run on, so it joins the transaction of its change.
 */
export class TeamClaims {
  constructor(
    private readonly db: Db,
    private readonly revocations: Revocations,
  ) {}

  /** Sets the team a session acts for; later refreshes keep it. */
  async set(sessionId: string, team: TeamClaim | null, db: Db = this.db): Promise<void> {
    await db
      .update(sessions)
      .set({ teamId: team?.id ?? null, teamRole: team?.role ?? null })
      .where(eq(sessions.id, sessionId));
  }

  /**
   * Drops the team from every session acting for it: one member's (who leaves or is removed), or everyone's when
   * `userId` is undefined (the team is deleted). Answers the claims those sessions' tokens carried, for `revoke`.
   */
  async drop(teamId: string, userId: string | undefined, db: Db = this.db): Promise<StaleClaim[]> {
    // The self-join hands back each row as it was before the update: the role its tokens claim.
    const before = alias(sessions, "before");
    const rows = await db
      .update(sessions)
      .set({ teamId: null, teamRole: null })
      .from(before)
      .where(and(eq(before.id, sessions.id), eq(before.teamId, teamId), userId ? eq(before.userId, userId) : undefined))
      .returning({ sessionId: sessions.id, role: before.teamRole });
    return this.written(db, rows.map(({ sessionId, role }) => ({ sessionId, team: { id: teamId, role: role ?? "" } })));
  }

  /**
   * Updates the team role remembered by every session of a user acting for the team (a member's role changed); answers
   * the claims their tokens carried, for `revoke`.
   */
  async setRole(userId: string, teamId: string, role: string, db: Db = this.db): Promise<StaleClaim[]> {
    const before = alias(sessions, "before");
    const rows = await db
      .update(sessions)
      .set({ teamRole: role })
      .from(before)
      .where(and(eq(before.id, sessions.id), eq(before.userId, userId), eq(before.teamId, teamId)))
      .returning({ sessionId: sessions.id, role: before.teamRole });
    return this.written(db, rows.map(({ sessionId, role: old }) => ({ sessionId, team: { id: teamId, role: old ?? "" } })));
  }

  /**
   * Refuses, on every instance, the access tokens of these sessions that carry these claims, once the change that made
   * them stale (`drop`, `setRole`, which wrote them into the record) has committed. The sessions live on, and their
   * next refresh carries the team they now act for (none after `drop`, the new role after `setRole`).
   */
  async revoke(claims: StaleClaim[]): Promise<void> {
    await this.revocations.announce(claims.map(({ sessionId, team }) => teamClaimEntry(sessionId, team)));
  }

  /** Writes the revocations of stale claims with the change that made them stale. */
  private async written(db: Db, claims: StaleClaim[]): Promise<StaleClaim[]> {
    await this.revocations.write(
      db,
      claims.map(({ sessionId, team }) => teamClaimEntry(sessionId, team)),
    );
    return claims;
  }

  /** True when the token, issued at `issuedAtS`, carries a claim revoked since. */
  async isRevoked(sessionId: string, team: TeamClaim, issuedAtS: number): Promise<boolean> {
    const at = await this.revocations.revokedAt(teamClaimEntry(sessionId, team));
    // Tokens from the second of the revocation are refused too: `iat` has no finer grain, and refusing is the safe side.
    return at !== undefined && issuedAtS <= Math.floor(at / 1000);
  }
}
