import type { Clock } from "../clock";
import { errors } from "../errors";
import type { PublicUserRow } from "../users";
import { setBounded } from "./bounded";
import { internList } from "./intern";
import type { CurrentSession, prepareQueries } from "./queries";

/**
 * How long a copy of a user may answer GET /auth/session while this instance hears every change. Copies are kept
 * exact by the announcements (a change made through `Users` drops them on every instance, a revocation drops the
 * session's); the age only bounds what a bug elsewhere could leave behind.
 */
const EXACT_TTL_MS = 5 * 60_000;
/**
 * The age a copy may reach when an announcement may have been missed: while the channel is down (or before its first
 * sync), or for a user changed in the last CHANGE_SETTLE_MS (a change inside a transaction is announced before it
 * commits, so a read racing the commit can still see the old row).
 */
const UNSURE_TTL_MS = 1000;
const CHANGE_SETTLE_MS = 10_000;
/** Bounds of the copies: a session part is ~150 bytes, a user ~500, so 200,000 sessions of 100,000 users is ~80 MB. */
const SESSIONS_MAX = 200_000;
const USERS_MAX = 100_000;

type SessionPart = CurrentSession["session"];
type UserCopy = { row: PublicUserRow; cachedAtMs: number; ttlMs: number };

/**
 * The current session with its user, for GET /auth/session. A session's part of the answer (id, user, times, amr)
 * never changes while it lives, so it is kept until the session is revoked; the user is kept apart, once for all their
 * sessions, until a change to them is announced. Either missing costs one prepared query, which fills both.
 */
export class CurrentSessions {
  private readonly sessions = new Map<string, SessionPart>();
  private readonly users = new Map<string, UserCopy>();
  /** Users changed lately (ms), whose copies stay short-lived for CHANGE_SETTLE_MS. */
  private readonly changedAt = new Map<string, number>();

  constructor(
    private readonly query: ReturnType<typeof prepareQueries>["current"],
    private readonly clock: Clock,
    /** True when the session was revoked while its row was being read: that row must not be kept. */
    private readonly revokedMeanwhile: (sessionId: string) => boolean,
    /** True while every change and revocation reaches this instance (the revocation channel is live). */
    private readonly hearsEveryChange: () => boolean,
  ) {}

  async get(sessionId: string, userId: string): Promise<CurrentSession> {
    const nowMs = this.clock.now().getTime();
    const session = this.sessions.get(sessionId);
    const user = this.users.get(userId);
    if (session && user && session.userId === userId && nowMs - user.cachedAtMs < this.ttl(user)) return { session, user: user.row };
    const [row] = await this.query.execute({ sid: sessionId });
    if (!row || row.session.userId !== userId) throw errors.sessionRevoked();
    // A revocation that arrived while the query ran must not be undone by keeping the row read before it.
    if (!this.revokedMeanwhile(sessionId)) {
      // Kept with the caller's id strings and a shared amr list: a copy each would be most of the entry (intern.ts).
      const { createdAt, expiresAt, amr } = row.session;
      setBounded(this.sessions, sessionId, { id: sessionId, userId, createdAt, expiresAt, amr: internList(amr) as string[] }, SESSIONS_MAX);
    }
    const changed = this.changedAt.get(userId);
    const sure = this.hearsEveryChange() && (changed === undefined || nowMs - changed > CHANGE_SETTLE_MS);
    setBounded(this.users, userId, { row: row.user, cachedAtMs: nowMs, ttlMs: sure ? EXACT_TTL_MS : UNSURE_TTL_MS }, USERS_MAX);
    return row;
  }

  private ttl(user: UserCopy): number {
    return this.hearsEveryChange() ? user.ttlMs : UNSURE_TTL_MS;
  }

  dropSession(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  dropUser(userId: string): void {
    this.users.delete(userId);
    const nowMs = this.clock.now().getTime();
    this.changedAt.set(userId, nowMs);
    // Sweeping on growth keeps the cost amortised; a user changed again is set anew above.
    if (this.changedAt.size % 1024 === 0) for (const [id, at] of this.changedAt) if (nowMs - at > CHANGE_SETTLE_MS) this.changedAt.delete(id);
  }

  /** After the channel was down: any change may have been missed, so no user copy is kept. */
  dropAllUsers(): void {
    this.users.clear();
  }
}
