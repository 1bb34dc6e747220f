import type { Clock } from "../clock";
import { errors } from "../errors";
import type { PublicUserRow } from "../users";
import { setBounded } from "./bounded";
import type { CurrentSession, prepareQueries } from "./queries";
import { type AuthInfo, VerifiedToken } from "./token-cache";

/**
 * How long a copy of a user may answer GET /auth/session while this instance hears every change. Copies are kept
 * exact by the announcements (a change made through `Users` drops them on every instance); the age only bounds what a
 * bug elsewhere could leave behind.
 */
const EXACT_TTL_MS = 5 * 60_000;
/**
 * The age a copy may reach when an announcement may have been missed: while the channel is down (or before its first
 * sync), or for a user changed in the last CHANGE_SETTLE_MS (a change inside a transaction is announced before it
 * commits, so a read racing the commit can still see the old row).
 */
const UNSURE_TTL_MS = 1000;
const CHANGE_SETTLE_MS = 10_000;
/** Bound of the user copies: ~500 bytes each, so 100,000 users is ~50 MB. */
const USERS_MAX = 100_000;

type UserCopy = { row: PublicUserRow; cachedAtMs: number; ttlMs: number };

/**
 * The current session with its user, for GET /auth/session. A session's part of the answer (id, user, times, amr)
 * never changes while it lives, so it is kept in its verified token's entry (token-cache.ts) for the token's life;
 * the user is kept apart, once for all their sessions, until a change to them is announced. Either missing costs one
 * prepared query, which fills both.
 */
export class CurrentSessions {
  private readonly users = new Map<string, UserCopy>();
  /** Users changed lately (ms), whose copies stay short-lived for CHANGE_SETTLE_MS. */
  private readonly changedAt = new Map<string, number>();

  constructor(
    private readonly query: ReturnType<typeof prepareQueries>["current"],
    private readonly clock: Clock,
    /** True while every change and revocation reaches this instance (the revocation channel is live). */
    private readonly hearsEveryChange: () => boolean,
  ) {}

  async get(auth: AuthInfo): Promise<CurrentSession> {
    const { sessionId, userId } = auth;
    const token = auth instanceof VerifiedToken ? auth : undefined;
    const nowMs = this.clock.now().getTime();
    const part = token?.session();
    const user = this.users.get(userId);
    if (part && user && nowMs - user.cachedAtMs < this.ttl(user)) return { session: part, user: user.row };
    const [row] = await this.query.execute({ sid: sessionId });
    if (!row || row.session.userId !== userId) throw errors.sessionRevoked();
    // Kept even if the session is revoked meanwhile: every request checks revocation before it gets here.
    token?.keepSession(row.session);
    const changed = this.changedAt.get(userId);
    const sure = this.hearsEveryChange() && (changed === undefined || nowMs - changed > CHANGE_SETTLE_MS);
    setBounded(this.users, userId, { row: row.user, cachedAtMs: nowMs, ttlMs: sure ? EXACT_TTL_MS : UNSURE_TTL_MS }, USERS_MAX);
    return row;
  }

  private ttl(user: UserCopy): number {
    return this.hearsEveryChange() ? user.ttlMs : UNSURE_TTL_MS;
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
