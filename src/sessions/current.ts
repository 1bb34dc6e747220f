import type { Clock } from "../clock";
import { errors } from "../errors";
import type { CurrentSession, prepareQueries } from "./queries";

/**
 * GET /auth/session answers from a copy of (session, user) at most this old. Revocation is still exact (checked by
 * `authenticate` first) and a change made through `Users` drops the copies on every instance at once; the age
 * bounds only what a missed message or a write racing a read could leave behind.
 */
const CURRENT_CACHE_TTL_MS = 1000;
const CURRENT_CACHE_MAX = 10_000;

/** The current session with its user, for GET /auth/session: one prepared query, or a copy under a second old. */
export class CurrentSessions {
  private readonly copies = new Map<string, { row: CurrentSession; cachedAtMs: number }>();

  constructor(
    private readonly query: ReturnType<typeof prepareQueries>["current"],
    private readonly clock: Clock,
    /** True when the session was revoked while its row was being read: that row must not be kept. */
    private readonly revokedMeanwhile: (sessionId: string) => boolean,
  ) {}

  async get(sessionId: string, userId: string): Promise<CurrentSession> {
    const nowMs = this.clock.now().getTime();
    const cached = this.copies.get(sessionId);
    if (cached && nowMs - cached.cachedAtMs < CURRENT_CACHE_TTL_MS && cached.row.user.id === userId) return cached.row;
    const [row] = await this.query.execute({ sid: sessionId });
    if (!row || row.session.userId !== userId) throw errors.sessionRevoked();
    // A revocation that arrived while the query ran must not be undone by caching the row read before it.
    if (!this.revokedMeanwhile(sessionId)) {
      this.copies.delete(sessionId);
      this.copies.set(sessionId, { row, cachedAtMs: nowMs });
      if (this.copies.size > CURRENT_CACHE_MAX) {
        const oldest = this.copies.keys().next().value;
        if (oldest !== undefined) this.copies.delete(oldest);
      }
    }
    return row;
  }

  dropSession(sessionId: string): void {
    this.copies.delete(sessionId);
  }

  dropUser(userId: string): void {
    for (const [sid, entry] of this.copies) if (entry.row.user.id === userId) this.copies.delete(sid);
  }
}
