import { and, desc, eq, gt, isNull, ne, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { AuditLog } from "../audit";
import type { Config } from "../config";
import { decrypt, encrypt, keyFromSecret, newId, randomToken, sha256 } from "../crypto";
import type { Db } from "../db";
import type { AuthEvent, Events } from "../events";
import { sessions, type UserRow } from "../db/schema";
import { coreError, errors } from "../errors";
import type { KeyValueStore, Subscription } from "../kv";
import type { RateLimiter } from "../rate-limit";
import type { RequestMeta } from "../request";
import type { SessionInfo } from "../hooks";
import type { AccessClaims, AccessTokens, ActorClaim, TeamClaim } from "../tokens/access";
import type { ServerSecrets } from "../tokens/keys";
import { type PublicUser, type PublicUserRow, type Users, violatedForeignKey } from "../users";
import { isUuid } from "../validation";
import { type CurrentSession, prepareQueries, teamOf } from "./queries";
import { formatRefreshToken, parseRefreshToken, type RefreshToken } from "./refresh-token";
import { REVOKED_CHANNEL, REVOKED_SET, revocationTtlS, teamClaimEntry } from "./revocation-keys";
import type { Clock } from "../clock";

export type TokenResponse = {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  expiresIn: number;
  mfaEnabled: boolean;
};

/** The caller of an authenticated route. */
export type AuthInfo = {
  userId: string;
  sessionId: string;
  roles: string[];
  amr: string[];
  team?: TeamClaim;
  /** When the session last proved a factor, in seconds since the epoch (the token's `auth_time`). */
  authTime: number;
  /** Set on impersonation tokens: the admin acting as this user. */
  act?: ActorClaim;
  token: string;
};

/** An impersonation's answer: a TokenResponse with no refresh token (it cannot be renewed). */
export type ImpersonationResponse = Omit<TokenResponse, "refreshToken">;

const invalidRefresh = () => coreError("INVALID_REFRESH_TOKEN");
/** The key a successor's secret is sealed with: only the holder of the token it replaced can open it. */
const sealingKeyOf = (secret: string) => keyFromSecret(secret, "refresh-successor");
/** Verified tokens kept in memory; each entry is a few hundred bytes, so the cache stays under a few MB. */
const VERIFIED_CACHE_MAX = 10_000;
// The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` name it too.
const BEARER = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i;
/** Messages on REVOKED_CHANNEL that start with this carry a changed user's id instead of session ids. */
const USER_CHANGED = "user:";
/**
 * GET /auth/session answers from a copy of (session, user) at most this old. Revocation is still exact (checked by
 * `authenticate` first) and a change made through `Users` drops the copies on every instance at once; the age
 * bounds only what a missed message or a write racing a read could leave behind.
 */
const CURRENT_CACHE_TTL_MS = 1000;
const CURRENT_CACHE_MAX = 10_000;

type VerifiedToken = { info: Readonly<AuthInfo>; expiresAtMs: number; issuedAtS: number };

/** How long a revocation waits to hear its own message back before answering anyway. */
const ECHO_TIMEOUT_MS = 250;


const revokedEvent = (userId: string, sessionId: string, reason: string): AuthEvent => ({
  type: "session.revoked",
  data: { userId, sessionId, reason },
});

export class Sessions {
  /** Verified Authorization headers until their token expires, least recently used first. */
  private readonly verified = new Map<string, VerifiedToken>();
  /** Revoked session ids, with the time after which no access token of theirs can still be valid. */
  private readonly revokedIds = new Map<string, number>();
  private readonly revocations: Subscription;
  /** Recent answers of `current`, by session id. */
  private readonly currentCache = new Map<string, { row: CurrentSession; cachedAtMs: number }>();
  /** Revocation messages this instance published and waits to hear back, with who waits. */
  private readonly echoes = new Map<string, Array<() => void>>();
  /** Built once: building a drizzle query per request costs as much as running it. */
  private readonly queries: ReturnType<typeof prepareQueries>;
  /** Extra claims for every access token (the library's `accessTokenClaims` hook), checked by src/hooks.ts. */
  extraClaims?: (user: PublicUser, session: SessionInfo) => Promise<Record<string, unknown> | undefined>;

  constructor(
    private readonly db: Db,
    private readonly kv: KeyValueStore,
    private readonly config: Config,
    private readonly tokens: AccessTokens,
    private readonly secrets: ServerSecrets,
    private readonly users: Users,
    private readonly audit: AuditLog,
    private readonly rateLimit: RateLimiter,
    private readonly clock: Clock,
    private readonly events: Events,
  ) {
    this.revocations = kv.subscribe(
      REVOKED_CHANNEL,
      (message) => {
        if (message.startsWith(USER_CHANGED)) this.dropCachedUser(message.slice(USER_CHANGED.length));
        else for (const sid of message.split(",")) this.forget(sid);
        const waiting = this.echoes.get(message);
        if (waiting) {
          this.echoes.delete(message);
          for (const resolve of waiting) resolve();
        }
      },
      () => this.resyncRevoked(),
    );
    users.onChange((userId) => {
      this.dropCachedUser(userId);
      // Other instances drop theirs too; if the message is lost, their copies still expire within the TTL.
      kv.publish(REVOKED_CHANNEL, `${USER_CHANGED}${userId}`).catch(() => {});
    });
    this.queries = prepareQueries(db);
  }

  /** True while revocations reach this instance through the channel; otherwise each check asks the store. */
  get listening(): boolean {
    return this.revocations.live;
  }

  /** Stops listening for revocations. */
  close(): void {
    this.revocations.close();
  }

  /** As long as any access token can live: impersonation tokens may outlive ordinary ones. */
  private get revocationTtlS() {
    return revocationTtlS(Math.max(this.config.ACCESS_TOKEN_TTL_S, this.config.IMPERSONATION_TTL_S));
  }

  /** Marks a session revoked in this instance and drops its cached tokens' verdicts. */
  private forget(sessionId: string): void {
    if (!sessionId) return;
    const t = this.clock.now().getTime();
    this.revokedIds.set(sessionId, t + this.revocationTtlS * 1000);
    this.currentCache.delete(sessionId);
    // Ids past the lifetime of any access token can go; sweeping on growth keeps the cost amortised.
    if (this.revokedIds.size % 1024 === 0) for (const [sid, until] of this.revokedIds) if (until <= t) this.revokedIds.delete(sid);
  }

  private dropCachedUser(userId: string): void {
    for (const [sid, entry] of this.currentCache) if (entry.row.user.id === userId) this.currentCache.delete(sid);
  }

  /** After a (re)connect: messages may have been missed, so reload every revocation still in force. */
  private async resyncRevoked(): Promise<void> {
    const live = await this.kv.liveMembers(REVOKED_SET);
    for (const sid of live) this.forget(sid);
  }

  /** When an entry (a session, or a session's team claim) was revoked, in ms; undefined when it is not. */
  private async revokedAt(id: string): Promise<number | undefined> {
    // While the subscription is down a revocation may be missed, so ask the store itself.
    const until = this.revocations.live ? this.revokedIds.get(id) : await this.kv.expiryOf(REVOKED_SET, id);
    return until != null && until > this.clock.now().getTime() ? until - this.revocationTtlS * 1000 : undefined;
  }

  /** Records revocations where every instance sees them: the store (for resyncs and fallbacks), then the channel. */
  private async announceRevoked(sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    for (const sid of sessionIds) this.forget(sid);
    await Promise.all(sessionIds.map((sid) => this.kv.addExpiring(REVOKED_SET, sid, this.revocationTtlS)));
    const message = sessionIds.join(",");
    const echoed = this.revocations.live ? this.echo(message) : undefined;
    await this.kv.publish(REVOKED_CHANNEL, message);
    // Redis writes a message to every subscriber's connection at once: once it is back here, the other instances have
    // it too, so the caller's next request is refused wherever it lands. Bounded, so a lost message cannot hang us.
    await echoed;
  }

  private echo(message: string): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const left = (this.echoes.get(message) ?? []).filter((w) => w !== done);
        if (left.length > 0) this.echoes.set(message, left);
        else this.echoes.delete(message);
        resolve();
      }, ECHO_TIMEOUT_MS);
      this.echoes.set(message, [...(this.echoes.get(message) ?? []), done]);
    });
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
    const refreshToken = await this.refreshToken({ sessionId, gen: 0, secret });
    const made = await this.tokenResponse(user, { sid: sessionId, amr: opts.amr, team: opts.team, authTime: now, ip: opts.meta.ip, userAgent: opts.meta.userAgent }, refreshToken, now);
    const row = {
      id: sessionId,
      userId: user.id,
      amr: opts.amr,
      teamId: opts.team?.id ?? null,
      teamRole: opts.team?.role ?? null,
      ip: opts.meta.ip,
      userAgent: opts.meta.userAgent,
      expiresAt: new Date(now.getTime() + this.config.SESSION_MAX_AGE_S * 1000),
      ...this.chainLink(secret, now, null),
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

  private refreshKey(): Promise<Buffer> {
    return this.secrets.get("refresh-token");
  }

  private async refreshToken(token: RefreshToken): Promise<string> {
    return formatRefreshToken(await this.refreshKey(), token);
  }

  /** The session columns that make `secret` the live refresh token, issued at `now`. */
  private chainLink(secret: string, now: Date, sealedNext: string | null) {
    return {
      refreshHash: sha256(secret),
      refreshIssuedAt: now,
      refreshExpiresAt: new Date(now.getTime() + this.config.REFRESH_TOKEN_TTL_S * 1000),
      refreshSealedNext: sealedNext,
    };
  }

  private async tokenResponse(
    user: PublicUserRow,
    claims: { sid: string; amr: string[]; team?: TeamClaim; authTime: Date; ip?: string | null; userAgent?: string | null },
    refreshToken: string,
    issuedAt: Date,
  ): Promise<TokenResponse> {
    const roles = this.users.rolesOf(user);
    const publicUser = this.users.toPublic(user);
    const extra = this.extraClaims
      ? await this.extraClaims(publicUser, { id: claims.sid, amr: claims.amr, ip: claims.ip ?? null, userAgent: claims.userAgent ?? null })
      : undefined;
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
    const presented = parseRefreshToken(await this.refreshKey(), refreshToken);
    if (!presented) throw invalidRefresh();
    // The tag proves the server issued this token for this session, so nobody else can spend the session's limit.
    await this.rateLimit.hit("RATE_LIMIT_REFRESH_SESSION", presented.sessionId);
    const now = this.clock.now();
    const successor = randomToken(32);
    const link = this.chainLink(successor, now, encrypt(sealingKeyOf(presented.secret), successor));
    const [rotated] = await this.queries.rotate.execute({
      sid: presented.sessionId,
      gen: presented.gen,
      hash: sha256(presented.secret),
      now: now.toISOString(),
      idleCutoff: new Date(now.getTime() - this.config.SESSION_IDLE_TIMEOUT_S * 1000).toISOString(),
      nextHash: link.refreshHash,
      nextExpiresAt: link.refreshExpiresAt.toISOString(),
      sealedNext: link.refreshSealedNext,
    });
    if (!rotated) return this.refused(presented, meta);
    const { session, user } = rotated;
    const token = await this.refreshToken({ sessionId: session.id, gen: session.refreshGen, secret: successor });
    return this.tokenResponse(user, { sid: session.id, amr: session.amr, team: teamOf(session), ip: session.ip, userAgent: session.userAgent, authTime: session.authTime }, token, now);
  }

  /** Answers a presented token that did not rotate: an ended session, a replay within the grace window, or theft. */
  private async refused(presented: RefreshToken, meta: RequestMeta): Promise<TokenResponse> {
    const [session] = await this.db.select().from(sessions).where(eq(sessions.id, presented.sessionId)).limit(1);
    const now = this.clock.now();
    if (!session || session.revokedAt || session.expiresAt <= now) throw invalidRefresh();
    if (now.getTime() - session.lastUsedAt.getTime() > this.config.SESSION_IDLE_TIMEOUT_S * 1000) {
      await this.revoke(session.id, "idle_timeout");
      throw invalidRefresh();
    }
    // The live generation (expired), or one the session never reached: nothing was rotated, nothing to replay.
    if (presented.gen >= session.refreshGen) throw invalidRefresh();

    const withinGrace = now.getTime() - session.refreshIssuedAt.getTime() <= this.config.REFRESH_REUSE_GRACE_S * 1000;
    if (presented.gen === session.refreshGen - 1 && withinGrace) {
      // The token just rotated (another tab won the race): answer its successor pair, issued again byte for byte.
      // Only the presented secret opens the seal; none is kept after a reissue (the pair went to someone else).
      if (!session.refreshSealedNext) throw invalidRefresh();
      let successor: string;
      try {
        successor = decrypt(sealingKeyOf(presented.secret), session.refreshSealedNext);
      } catch {
        throw invalidRefresh();
      }
      const user = await this.users.findById(session.userId);
      if (!user) throw invalidRefresh();
      const token = await this.refreshToken({ sessionId: session.id, gen: session.refreshGen, secret: successor });
      return this.tokenResponse(user, { sid: session.id, amr: session.amr, team: teamOf(session), ip: session.ip, userAgent: session.userAgent, authTime: session.authTime }, token, session.refreshIssuedAt);
    }
    // An older generation of this session's own chain (the tag says so) came back after its successor was used: one
    // of the two holders is a thief, and which one cannot be told, so the session ends for both.
    await this.revoke(session.id, "refresh_token_reused");
    await this.audit.record({ type: "refresh_reuse", userId: session.userId, meta, data: { sessionId: session.id } });
    throw coreError("REFRESH_TOKEN_REUSED");
  }

  /**
   * Verifies a Bearer token. A token verified once is kept until it expires, so the signature is checked once per
   * token, not per request; revocation is checked on every call against the ids this instance holds in memory
   * (kept current by the `revoked` channel), so no round trip is needed while the subscription is live.
   */
  async authenticate(authorization: string | null | undefined): Promise<AuthInfo> {
    if (!authorization) throw coreError("UNAUTHORIZED");
    const nowMs = this.clock.now().getTime();
    let entry = this.verified.get(authorization);
    if (entry && entry.expiresAtMs > nowMs) {
      this.verified.delete(authorization);
      this.verified.set(authorization, entry);
    } else {
      if (entry) this.verified.delete(authorization);
      entry = await this.verifyHeader(authorization);
      this.verified.set(authorization, entry);
      if (this.verified.size > VERIFIED_CACHE_MAX) {
        const oldest = this.verified.keys().next().value;
        if (oldest !== undefined) this.verified.delete(oldest);
      }
    }
    if ((await this.revokedAt(entry.info.sessionId)) !== undefined) throw errors.sessionRevoked();
    if (entry.info.team) {
      // Tokens from the second of the revocation are refused too: `iat` has no finer grain, and refusing is the safe side.
      const at = await this.revokedAt(teamClaimEntry(entry.info.sessionId, entry.info.team));
      if (at !== undefined && entry.issuedAtS <= Math.floor(at / 1000)) {
        throw coreError("TEAM_CLAIM_REVOKED");
      }
    }
    return entry.info;
  }

  private async verifyHeader(authorization: string): Promise<VerifiedToken> {
    const match = BEARER.exec(authorization);
    if (!match?.[1]) throw coreError("INVALID_TOKEN");
    const token = match[1];
    const claims: AccessClaims = await this.tokens.verify(token);
    const info: AuthInfo = {
      userId: claims.sub,
      sessionId: claims.sid,
      roles: claims.roles,
      amr: claims.amr,
      team: claims.team,
      authTime: claims.auth_time,
      token,
    };
    if (claims.act) info.act = Object.freeze({ sub: claims.act.sub });
    // Shared by every request presenting this token, so nobody may change it.
    Object.freeze(info.roles);
    Object.freeze(info.amr);
    if (info.team) Object.freeze(info.team);
    return { info: Object.freeze(info), expiresAtMs: claims.exp * 1000, issuedAtS: claims.iat };
  }

  /**
   * Refuses, on every instance, the access tokens of these sessions that carry this team claim; the sessions live on, and
   * their next refresh carries the team they now act for (none after dropTeam, the new role after setTeamRole).
   */
  async revokeTeamClaims(claims: Array<{ sessionId: string; team: TeamClaim }>): Promise<void> {
    await this.announceRevoked(claims.map(({ sessionId, team }) => teamClaimEntry(sessionId, team)));
  }

  /** Refuses, on every instance, the access tokens of sessions whose rows are already gone (their user was deleted). */
  async announceEnded(sessionIds: string[]): Promise<void> {
    await this.announceRevoked(sessionIds);
  }

  /**
   * Revokes one session: its refresh tokens stop at once and its access tokens are refused on every instance. `reason`
   * goes into its `session.revoked` event, written with `db` (the transaction of the change that ends the session).
   */
  async revoke(sessionId: string, reason: string, db: Db = this.db): Promise<void> {
    await this.announceRevoked([sessionId]);
    await this.events.atomic(async (tx) => {
      const ended = await tx
        .update(sessions)
        .set({ revokedAt: this.clock.now() })
        .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .returning({ userId: sessions.userId });
      await this.events.emit(tx, ...ended.map((s) => revokedEvent(s.userId, sessionId, reason)));
    }, db);
  }

  /** Revokes every live session of a user, but `exceptSessionId` when given; `reason` and `db` as for `revoke`. */
  async revokeAll(userId: string, exceptSessionId?: string, reason = "all_revoked", db: Db = this.db): Promise<number> {
    const revoked = await this.events.atomic(async (tx) => {
      const ended = await tx
        .update(sessions)
        .set({ revokedAt: this.clock.now() })
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined))
        .returning({ id: sessions.id });
      await this.events.emit(tx, ...ended.map((s) => revokedEvent(userId, s.id, reason)));
      return ended;
    }, db);
    await this.announceRevoked(revoked.map((s) => s.id));
    return revoked.length;
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

  /** The current session with its user, for GET /auth/session: one prepared query, or a copy under a second old. */
  async current(auth: AuthInfo): Promise<CurrentSession> {
    const nowMs = this.clock.now().getTime();
    const cached = this.currentCache.get(auth.sessionId);
    if (cached && nowMs - cached.cachedAtMs < CURRENT_CACHE_TTL_MS && cached.row.user.id === auth.userId) return cached.row;
    const [row] = await this.queries.current.execute({ sid: auth.sessionId });
    if (!row || row.session.userId !== auth.userId) throw errors.sessionRevoked();
    // A revocation that arrived while the query ran must not be undone by caching the row read before it.
    if (!this.revokedIds.has(auth.sessionId)) {
      this.currentCache.delete(auth.sessionId);
      this.currentCache.set(auth.sessionId, { row, cachedAtMs: nowMs });
      if (this.currentCache.size > CURRENT_CACHE_MAX) {
        const oldest = this.currentCache.keys().next().value;
        if (oldest !== undefined) this.currentCache.delete(oldest);
      }
    }
    return row;
  }

  /** Sets the team a session acts for; later refreshes keep it. */
  async setTeam(sessionId: string, team: TeamClaim | null, db: Db = this.db): Promise<void> {
    await db
      .update(sessions)
      .set({ teamId: team?.id ?? null, teamRole: team?.role ?? null })
      .where(eq(sessions.id, sessionId));
  }

  /**
   * Issues a fresh pair for an existing session (e.g. after a team switch), rotating its refresh token. `reauthenticated`:
   * the session just proved a factor again (POST /auth/reauth), so its `auth_time` becomes now.
   */
  async reissue(sessionId: string, opts: { reauthenticated?: boolean } = {}): Promise<TokenResponse> {
    const now = this.clock.now();
    const secret = randomToken(32);
    const [session] = await this.db
      .update(sessions)
      .set({ refreshGen: sql`${sessions.refreshGen} + 1`, ...this.chainLink(secret, now, null), ...(opts.reauthenticated ? { authTime: now } : {}) })
      .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
      .returning();
    if (!session) throw errors.sessionRevoked();
    const user = await this.users.findById(session.userId);
    if (!user) throw errors.sessionRevoked();
    const token = await this.refreshToken({ sessionId, gen: session.refreshGen, secret });
    return this.tokenResponse(user, { sid: sessionId, amr: session.amr, team: teamOf(session), ip: session.ip, userAgent: session.userAgent, authTime: session.authTime }, token, now);
  }

  /**
   * Drops the team from every session acting for it: one member's (who leaves or is removed), or everyone's when
   * `userId` is undefined (the team is deleted). Answers the claims those sessions' tokens carried, for revokeTeamClaims.
   */
  async dropTeam(teamId: string, userId: string | undefined, db: Db = this.db): Promise<Array<{ sessionId: string; team: TeamClaim }>> {
    // The self-join hands back each row as it was before the update: the role its tokens claim.
    const before = alias(sessions, "before");
    const rows = await db
      .update(sessions)
      .set({ teamId: null, teamRole: null })
      .from(before)
      .where(and(eq(before.id, sessions.id), eq(before.teamId, teamId), userId ? eq(before.userId, userId) : undefined))
      .returning({ sessionId: sessions.id, role: before.teamRole });
    return rows.map(({ sessionId, role }) => ({ sessionId, team: { id: teamId, role: role ?? "" } }));
  }

  /**
   * Updates the team role remembered by every session of a user acting for the team (a member's role changed); answers
   * the claims their tokens carried, for revokeTeamClaims.
   */
  async setTeamRole(userId: string, teamId: string, role: string, db: Db = this.db): Promise<Array<{ sessionId: string; team: TeamClaim }>> {
    const before = alias(sessions, "before");
    const rows = await db
      .update(sessions)
      .set({ teamRole: role })
      .from(before)
      .where(and(eq(before.id, sessions.id), eq(before.userId, userId), eq(before.teamId, teamId)))
      .returning({ sessionId: sessions.id, role: before.teamRole });
    return rows.map(({ sessionId, role: old }) => ({ sessionId, team: { id: teamId, role: old ?? "" } }));
  }
}
