import { and, desc, eq, gt, isNull, ne, sql } from "drizzle-orm";
import type { AuditLog } from "../audit";
import type { Clock } from "../clock";
import type { Config } from "../config";
import { newId, randomToken } from "../crypto";
import type { Db } from "../db";
import { sessions, type UserRow, users as usersTable } from "../db/schema";
import { coreError, errors } from "../errors";
import type { AuthEvent, Events } from "../events";
import type { SessionInfo } from "../hooks";
import type { KeyValueStore } from "../kv";
import type { Logger } from "../logger";
import type { RequestMeta } from "../request";
import type { AccessTokens, TeamClaim } from "../tokens/access";
import type { ServerSecrets } from "../tokens/keys";
import { type PublicUser, type PublicUserRow, type Users, violatedForeignKey } from "../users";
import { isUuid } from "../validation";
import { CurrentSessions } from "./current";
import { type CurrentSession, prepareQueries } from "./queries";
import { claimsOf, type ExtraClaimsOf, hookSubjectColumns, RefreshChains, type SessionClaims } from "./refresh";
import { Revocations } from "./revocations";
import { TeamClaims } from "./team-claims";
import { type AuthInfo, VerifiedTokens } from "./token-cache";

export type { AuthInfo } from "./token-cache";

export type TokenResponse = {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  expiresIn: number;
  mfaEnabled: boolean;
};

/** An impersonation's answer: a TokenResponse with no refresh token (it cannot be renewed). */
export type ImpersonationResponse = Omit<TokenResponse, "refreshToken">;

/** The ports a Sessions is made of, made once in server.ts. */
export type SessionsDeps = {
  db: Db;
  kv: KeyValueStore;
  config: Config;
  tokens: AccessTokens;
  secrets: ServerSecrets;
  users: Users;
  audit: AuditLog;
  clock: Clock;
  events: Events;
  logger: Logger;
};

const revokedEvent = (userId: string, sessionId: string, reason: string): AuthEvent => ({
  type: "session.revoked",
  data: { userId, sessionId, reason },
});

/**
 * Sessions: start, authenticate, refresh, revoke, list. The jobs behind it live beside it, one file each: the refresh
 * chain (refresh.ts), revocations seen by every instance (revocations.ts), the verified-token cache (token-cache.ts),
 * the copy GET /auth/session answers from (current.ts) and team claims (team-claims.ts).
 */
export class Sessions {
  readonly teamClaims: TeamClaims;
  private readonly revocations: Revocations;
  private readonly verified: VerifiedTokens;
  private readonly currentCopies: CurrentSessions;
  private readonly chains: RefreshChains;
  private readonly db: Db;
  private readonly config: Config;
  private readonly users: Users;
  private readonly clock: Clock;
  private readonly events: Events;
  private readonly tokens: AccessTokens;
  /** Built once: building a drizzle query per request costs as much as running it. */
  private readonly queries: ReturnType<typeof prepareQueries>;
  /** Extra claims for every access token (the library's `accessTokenClaims` hook), checked by src/hooks.ts. */
  extraClaims?: (user: PublicUser, session: SessionInfo) => Promise<Record<string, unknown> | undefined>;

  /**
   * The hook over a session's rows, or undefined when there is none. Every caller asks it before it writes what the
   * token stands for, so a hook that throws leaves the session (or its absence) as it was.
   */
  private get extraClaimsOf(): ExtraClaimsOf | undefined {
    const hook = this.extraClaims;
    if (!hook) return undefined;
    return (user, session) => hook(this.users.toPublic(user), { id: session.id, amr: session.amr, ip: session.ip, userAgent: session.userAgent });
  }

  constructor(deps: SessionsDeps) {
    const { db, kv, config, users, clock } = deps;
    this.db = db;
    this.config = config;
    this.users = users;
    this.clock = clock;
    this.events = deps.events;
    this.tokens = deps.tokens;
    this.queries = prepareQueries(db);
    this.revocations = new Revocations(db, kv, clock, deps.logger, Math.max(config.ACCESS_TOKEN_TTL_S, config.IMPERSONATION_TTL_S), {
      userChanged: (userId) => this.currentCopies.dropUser(userId),
      resynced: () => this.currentCopies.dropAllUsers(),
    });
    this.currentCopies = new CurrentSessions(
      this.queries.current,
      clock,
      () => this.revocations.live,
    );
    this.verified = new VerifiedTokens(deps.tokens, clock);
    this.teamClaims = new TeamClaims(db, this.revocations);
    this.chains = new RefreshChains({ ...deps, queries: this.queries, revoke: (sid, reason) => this.revoke(sid, reason) });
    users.onChange((userId) => this.revocations.userChanged(userId));
  }

  /** True while revocations reach this instance through the channel; otherwise each check asks the store. */
  get listening(): boolean {
    return this.revocations.live;
  }

  /** Stops listening for revocations. */
  close(): void {
    this.revocations.close();
  }

  /**
   * Starts a session for a user and returns the first token pair. `inTransaction` runs in the transaction of the
   * session's insert (to write the event announcing it), so both commit or neither does.
   */
  async create(
    user: UserRow,
    opts: { amr: string[]; meta: RequestMeta; team?: TeamClaim; sessionId?: string; inTransaction?: (tx: Db, made: TokenResponse) => Promise<void> },
  ): Promise<TokenResponse> {
    const now = this.clock.now();
    const sessionId = opts.sessionId ?? newId();
    const secret = randomToken(32);
    // The tokens are made before the insert: they may read the database (the refresh key, once) and run the app's
    // claims hook, neither of which belongs in the transaction, and a hook that fails then leaves nothing written.
    const refreshToken = await this.chains.format({ sessionId, gen: 0, secret });
    const extra = await this.extraClaimsOf?.(user, { id: sessionId, amr: opts.amr, ip: opts.meta.ip, userAgent: opts.meta.userAgent });
    const made = await this.tokenResponse(user, { sid: sessionId, amr: opts.amr, team: opts.team, authTime: now }, refreshToken, now, extra);
    const row = {
      id: sessionId,
      userId: user.id,
      amr: opts.amr,
      teamId: opts.team?.id ?? null,
      teamRole: opts.team?.role ?? null,
      ip: opts.meta.ip,
      userAgent: opts.meta.userAgent,
      expiresAt: new Date(now.getTime() + this.config.SESSION_MAX_AGE_S * 1000),
      ...this.chains.link(secret, now),
    };
    await this.events
      .atomic(async (db) => {
        // Use is recorded on the session (the guest sweep reads it from there), so a sign-in writes this one row;
        // the pool's insert is prepared once, a transaction's is built.
        if (db === this.db) await this.queries.create.execute({ ...row, now });
        else await db.insert(sessions).values({ ...row, createdAt: now, lastUsedAt: now });
        await opts.inTransaction?.(db, made);
      })
      .catch((error: unknown) => {
        // The user was deleted while signing in: there is nobody left to make a session for.
        throw violatedForeignKey(error) ? errors.sessionRevoked() : error;
      });
    return made;
  }

  /**
   * A session in which `adminId` acts as `user`: its row makes it revocable like any other (a ban or a revocation of
   * the user's sessions ends it too), but it holds no refresh token and ends with its one access token.
   */
  async impersonate(user: UserRow, adminId: string, meta: RequestMeta): Promise<ImpersonationResponse> {
    const now = this.clock.now();
    const lifetimeS = this.config.IMPERSONATION_TTL_S;
    const sessionId = newId();
    const expiresAt = new Date(now.getTime() + lifetimeS * 1000);
    const amr = ["impersonation"];
    // The empty refresh hash matches no token's secret, so nothing can ever rotate this session.
    await this.db.insert(sessions).values({
      id: sessionId,
      userId: user.id,
      amr,
      ip: meta.ip,
      userAgent: meta.userAgent,
      createdAt: now,
      lastUsedAt: now,
      expiresAt,
      refreshHash: "",
      refreshIssuedAt: now,
      refreshExpiresAt: now,
    });
    const roles = this.users.rolesOf(user);
    // auth_time 0: the user proved nothing here (and the act claim alone keeps the token out of every step-up route).
    const accessToken = await this.tokens.sign({ sub: user.id, sid: sessionId, roles, amr, auth_time: 0, act: { sub: adminId } }, now, lifetimeS);
    return { user: this.users.toPublic(user), accessToken, tokenType: "Bearer", expiresIn: lifetimeS, mfaEnabled: user.mfaEnabled };
  }

  /** The pair for a session, its access token carrying `extra`: the claims hook's, asked before anything was written. */
  private async tokenResponse(
    user: PublicUserRow,
    claims: SessionClaims,
    refreshToken: string,
    issuedAt: Date,
    extra: Record<string, unknown> | undefined,
  ): Promise<TokenResponse> {
    const roles = this.users.rolesOf(user);
    const publicUser = this.users.toPublic(user);
    const authTime = Math.floor(claims.authTime.getTime() / 1000);
    const accessToken = await this.tokens.sign(
      { sub: user.id, sid: claims.sid, roles, amr: claims.amr, team: claims.team, auth_time: authTime },
      issuedAt,
      undefined,
      extra,
    );
    return {
      user: publicUser,
      accessToken,
      refreshToken,
      tokenType: "Bearer",
      expiresIn: this.config.ACCESS_TOKEN_TTL_S,
      mfaEnabled: user.mfaEnabled,
    };
  }

  /**
   * Rotates a refresh token. A token already rotated is answered with the same successor pair within the grace
   * window (concurrent tabs); after it, the presentation is treated as theft and the whole session dies.
   */
  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenResponse> {
    const rotated = await this.chains.rotate(refreshToken, meta, this.extraClaimsOf);
    return this.tokenResponse(rotated.user, rotated.claims, rotated.refreshToken, rotated.issuedAt, rotated.extra);
  }

  /**
   * Verifies a Bearer token. A token verified once is kept until it expires, so the signature is checked once per
   * token, not per request; revocation is checked on every call against the ids this instance holds in memory
   * (kept current by the `revoked` channel), so no round trip is needed while the subscription is live.
   */
  async authenticate(authorization: string | null | undefined): Promise<AuthInfo> {
    if (!authorization) throw coreError("UNAUTHORIZED");
    const entry = await this.verified.verify(authorization);
    if ((await this.revocations.revokedAt(entry.sessionId)) !== undefined) throw errors.sessionRevoked();
    if (entry.team && (await this.teamClaims.isRevoked(entry.sessionId, entry.team, entry.issuedAtS))) {
      throw coreError("TEAM_CLAIM_REVOKED");
    }
    if (entry.act && !(await this.mayStillAct(entry.act.sub))) throw errors.sessionRevoked();
    return entry;
  }

  /**
   * An impersonation acts with its admin's power, so it holds while the admin still has it: an admin banned, deleted
   * or no longer holding the role (by either source) ends every impersonation they started, on every instance. Read
   * on each request of such a token (they are few, and short-lived), never cached.
   */
  private async mayStillAct(adminId: string): Promise<boolean> {
    const admin = await this.users.findById(adminId);
    return admin !== undefined && !this.users.isBanned(admin, this.clock.now()) && this.users.rolesOf(admin).includes("admin");
  }

  /**
   * Runs `change` in one transaction, in which revocations (`revoke`, `revokeAll` and team claims given `tx`) are
   * written with the change they follow from; they are announced to every instance once it commits. A change cut
   * halfway revokes nothing, and one that commits has its revocations in the database even if the announcement fails.
   */
  transaction<T>(change: (tx: Db) => Promise<T>): Promise<T> {
    return this.revocations.transaction((work) => this.events.transaction(work), change);
  }

  /**
   * Deletes a user (its sessions go with it) and refuses their sessions' access tokens on every instance. `before`
   * runs in the deletion's transaction once the user's row is locked, and may refuse it by throwing (Users.delete).
   */
  async deleteUser(userId: string, before?: (tx: Db) => Promise<void>): Promise<void> {
    let ended: string[] = [];
    await this.users.delete(
      userId,
      async (tx, sessionIds) => {
        ended = sessionIds;
        await this.revocations.write(tx, sessionIds);
      },
      before,
    );
    await this.revocations.announce(ended);
  }

  /** Deletes revocations past the lifetime of any token they refuse (the maintenance job). */
  deleteExpiredRevocations(): Promise<number> {
    return this.revocations.deleteExpired();
  }

  /**
   * Revokes one session: its refresh tokens stop at once and its access tokens are refused on every instance. `reason`
   * goes into its `session.revoked` event. Given `db`, a transaction of `transaction`, it is part of that change.
   */
  async revoke(sessionId: string, reason: string, db?: Db): Promise<void> {
    await this.within(db, async (tx) => {
      const ended = await tx
        .update(sessions)
        .set({ revokedAt: this.clock.now() })
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .returning({ userId: sessions.userId });
      await this.revocations.record(tx, [sessionId]);
      await this.events.emit(tx, ...ended.map((s) => revokedEvent(s.userId, sessionId, reason)));
    });
  }

  /** Revokes every live session of a user, but `exceptSessionId` when given; `reason` and `db` as for `revoke`. */
  async revokeAll(userId: string, exceptSessionId?: string, reason = "all_revoked", db?: Db): Promise<number> {
    return this.within(db, async (tx) => {
      const ended = await tx
        .update(sessions)
        .set({ revokedAt: this.clock.now() })
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined))
        .returning({ id: sessions.id });
      await this.revocations.record(
        tx,
        ended.map((s) => s.id),
      );
      await this.events.emit(tx, ...ended.map((s) => revokedEvent(userId, s.id, reason)));
      return ended.length;
    });
  }

  /** Runs `work` inside `db` when it is a transaction of `transaction` already, else in a transaction of its own. */
  private within<T>(db: Db | undefined, work: (tx: Db) => Promise<T>): Promise<T> {
    return db && db !== this.db ? work(db) : this.transaction(work);
  }

  async list(userId: string, currentSessionId: string) {
    const rows = await this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, this.clock.now())))
      .orderBy(desc(sessions.lastUsedAt));
    return rows.map((s) => ({
      id: s.id,
      createdAt: s.createdAt.toISOString(),
      lastUsedAt: s.lastUsedAt.toISOString(),
      ip: s.ip,
      userAgent: s.userAgent,
      current: s.id === currentSessionId,
    }));
  }

  async findOwned(userId: string, sessionId: string) {
    if (!isUuid(sessionId)) return undefined;
    const [row] = await this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
      .limit(1);
    return row;
  }

  /** The current session with its user, for GET /auth/session: copies kept exact by the announcements, or one query. */
  current(auth: AuthInfo): Promise<CurrentSession> {
    return this.currentCopies.get(auth);
  }

  /**
   * Issues a fresh pair for the caller's session (e.g. after a team switch), rotating its refresh token. In order, each
   * step only once the one before it passed: the claims hook (asked about the session as it is), `check` (what must
   * hold before anything is spent or written: reauth's factors), then one write, the rotation, in the transaction of
   * `inTransaction` when given (a team switch's). `reauthenticated`: the session just proved a factor again (POST
   * /auth/reauth), so its `auth_time` becomes now.
   */
  async reissue(
    auth: Pick<AuthInfo, "sessionId" | "act">,
    opts: { reauthenticated?: boolean; check?: () => Promise<void>; inTransaction?: (tx: Db) => Promise<void> } = {},
  ): Promise<TokenResponse> {
    // An impersonation session holds one access token, with its `act`: a fresh pair would carry neither the claim
    // nor its limits (a refresh token, a token that passes step-up).
    if (auth.act) throw errors.forbidden("An impersonation token cannot be exchanged for new tokens");
    const { sessionId } = auth;
    const extraClaimsOf = this.extraClaimsOf;
    let extra: Record<string, unknown> | undefined;
    if (extraClaimsOf) {
      const [live] = await this.db
        .select(hookSubjectColumns)
        .from(sessions)
        .innerJoin(usersTable, eq(usersTable.id, sessions.userId))
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .limit(1);
      if (!live) throw errors.sessionRevoked();
      extra = await extraClaimsOf(live.user, live.session);
    }
    await opts.check?.();
    const now = this.clock.now();
    const secret = randomToken(32);
    const rotate = (db: Db) =>
      db
        .update(sessions)
        .set({ refreshGen: sql`${sessions.refreshGen} + 1`, ...this.chains.link(secret, now), ...(opts.reauthenticated ? { authTime: now } : {}) })
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .returning();
    const inTransaction = opts.inTransaction;
    const [session] = inTransaction
      ? await this.events.transaction(async (tx) => {
          await inTransaction(tx);
          const rotated = await rotate(tx);
          // A session revoked meanwhile: the change it came with is undone too.
          if (rotated.length === 0) throw errors.sessionRevoked();
          return rotated;
        })
      : await rotate(this.db);
    if (!session) throw errors.sessionRevoked();
    const user = await this.users.findById(session.userId);
    if (!user) throw errors.sessionRevoked();
    const token = await this.chains.format({ sessionId, gen: session.refreshGen, secret });
    return this.tokenResponse(user, claimsOf(session), token, now, extra);
  }
}
