import { and, desc, eq, gt, isNull, ne, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { AuditLog } from "../audit";
import type { Config } from "../config";
import { decrypt, encrypt, keyFromSecret, newId, randomToken, sha256 } from "../crypto";
import type { Db } from "../db";
import { refreshTokens, type SessionRow, sessions, type UserRow, users } from "../db/schema";
import { AuthError, errors } from "../errors";
import type { KeyValueStore, Subscription } from "../kv";
import type { RateLimiter } from "../rate-limit";
import type { RequestMeta } from "../request";
import type { AccessClaims, AccessTokens, TeamClaim } from "../tokens/access";
import type { PublicUser, Users } from "../users";
import { isUuid } from "../validation";

export type TokenResponse = {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  expiresIn: number;
  mfaEnabled: boolean;
};

/** The caller of an authenticated route. */
export type AuthInfo = { userId: string; sessionId: string; roles: string[]; amr: string[]; team?: TeamClaim; token: string };

const invalidRefresh = () => new AuthError(401, "INVALID_REFRESH_TOKEN", "The refresh token is invalid or has expired");
const graceKey = (tokenHash: string) => `refresh-grace:${tokenHash}`;
/**
 * Every instance listens here for revoked session ids (comma-separated). REVOKED_SET holds each revocation until no
 * access token it refuses can still be valid: instances resync from it on reconnect, and ask it while disconnected.
 */
const REVOKED_CHANNEL = "revoked";
const REVOKED_SET = "revoked-sessions";
/** Verified tokens kept in memory; each entry is a few hundred bytes, so the cache stays under a few MB. */
const VERIFIED_CACHE_MAX = 10_000;
const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;
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

/** A revocation entry that refuses only a session's tokens carrying this exact team claim (a member left, or changed role). */
const teamClaimEntry = (sessionId: string, team: TeamClaim) => `${sessionId}/team:${team.id}:${team.role}`;
type CurrentSession = { session: SessionRow; user: UserRow };

/** The team a session acts for, as an access token claims it. */
const teamOf = (session: SessionRow): TeamClaim | undefined =>
  session.teamId && session.teamRole ? { id: session.teamId, role: session.teamRole } : undefined;

/** Rows of a raw query: postgres-js answers an array of rows, PGlite an object holding them. */
function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

function prepareQueries(db: Db) {
  return {
    current: db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, sql.placeholder("sid")), isNull(sessions.revokedAt)))
      .limit(1)
      .prepare("sessions_current"),
    refreshLookup: db
      .select({ token: refreshTokens, session: sessions, user: users })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(refreshTokens.tokenHash, sql.placeholder("tokenHash")))
      .limit(1)
      .prepare("sessions_refresh_lookup"),
  };
}

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

  constructor(
    private readonly db: Db,
    private readonly kv: KeyValueStore,
    private readonly config: Config,
    private readonly tokens: AccessTokens,
    private readonly users: Users,
    private readonly audit: AuditLog,
    private readonly rateLimit: RateLimiter,
    private readonly now: () => Date,
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

  private get revocationTtlS() {
    return this.config.ACCESS_TOKEN_TTL_S + 60;
  }

  /** Marks a session revoked in this instance and drops its cached tokens' verdicts. */
  private forget(sessionId: string): void {
    if (!sessionId) return;
    const t = this.now().getTime();
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
    return until != null && until > this.now().getTime() ? until - this.revocationTtlS * 1000 : undefined;
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

  /** Starts a session for a user and returns the first token pair. */
  async create(user: UserRow, opts: { amr: string[]; meta: RequestMeta; team?: TeamClaim }): Promise<TokenResponse> {
    const now = this.now();
    const sessionId = newId();
    const refreshToken = randomToken(32);
    await this.db.transaction(async (tx) => {
      await tx.insert(sessions).values({
        id: sessionId,
        userId: user.id,
        amr: opts.amr,
        teamId: opts.team?.id ?? null,
        teamRole: opts.team?.role ?? null,
        ip: opts.meta.ip,
        userAgent: opts.meta.userAgent,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: new Date(now.getTime() + this.config.SESSION_MAX_AGE_S * 1000),
      });
      await tx.insert(refreshTokens).values(this.refreshRow(sessionId, refreshToken, now));
      await tx.update(users).set({ lastActiveAt: now }).where(eq(users.id, user.id));
    });
    return this.tokenResponse(user, { sid: sessionId, amr: opts.amr, team: opts.team }, refreshToken);
  }

  private refreshRow(sessionId: string, token: string, now: Date) {
    return {
      id: newId(),
      sessionId,
      tokenHash: sha256(token),
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.config.REFRESH_TOKEN_TTL_S * 1000),
    };
  }

  private async tokenResponse(
    user: UserRow,
    claims: { sid: string; amr: string[]; team?: TeamClaim },
    refreshToken: string,
  ): Promise<TokenResponse> {
    const roles = this.users.rolesOf(user);
    const accessToken = await this.tokens.sign({ sub: user.id, sid: claims.sid, roles, amr: claims.amr, team: claims.team });
    return {
      user: this.users.toPublic(user),
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
    if (refreshToken.length < 20 || refreshToken.length > 200) throw invalidRefresh();
    const tokenHash = sha256(refreshToken);
    const [found] = await this.queries.refreshLookup.execute({ tokenHash });
    if (!found) throw invalidRefresh();
    const { token, session, user } = found;
    const now = this.now();
    await this.rateLimit.hit("RATE_LIMIT_REFRESH_SESSION", session.id);
    if (session.revokedAt || session.expiresAt <= now || token.expiresAt <= now) throw invalidRefresh();
    if (now.getTime() - session.lastUsedAt.getTime() > this.config.SESSION_IDLE_TIMEOUT_S * 1000) {
      await this.revoke(session.id);
      throw invalidRefresh();
    }
    if (token.rotatedAt) return this.replayOrTheft(refreshToken, tokenHash, token.rotatedAt, session.id, session.userId, meta);

    const successor = randomToken(32);
    const next = this.refreshRow(session.id, successor, now);
    // One statement is one transaction and one commit: the four writes of a rotation cost a single round trip.
    // Only the request whose UPDATE finds the token unrotated writes the successor.
    const result = await this.db.execute(sql`
      with rotated as (
        update refresh_tokens set rotated_at = ${now.toISOString()}
        where id = ${token.id} and rotated_at is null
        returning session_id
      ), inserted as (
        insert into refresh_tokens (id, session_id, token_hash, created_at, expires_at)
        select ${next.id}, session_id, ${next.tokenHash}, ${now.toISOString()}, ${next.expiresAt.toISOString()} from rotated
        returning id
      ), touched_session as (
        update sessions set last_used_at = ${now.toISOString()} where id in (select session_id from rotated)
      ), touched_user as (
        -- Keeps a guest who only ever refreshes from being swept as unused.
        update users set last_active_at = ${now.toISOString()} where id = ${session.userId} and exists (select 1 from rotated)
      )
      select count(*)::int as won from inserted`);
    const won = rowsOf<{ won: number }>(result)[0]?.won === 1;
    // Another request rotated this token a moment ago: answer as it did.
    if (!won) return this.replayOrTheft(refreshToken, tokenHash, now, session.id, session.userId, meta);

    const response = await this.tokenResponse(user, { sid: session.id, amr: session.amr, team: teamOf(session) }, successor);
    // The successor pair is kept for the grace window, sealed with the old token so only its holder can open it.
    await this.kv.set(
      graceKey(tokenHash),
      encrypt(keyFromSecret(refreshToken, "refresh-grace"), JSON.stringify(response)),
      this.config.REFRESH_REUSE_GRACE_S + 5,
    );
    return response;
  }

  private async replayOrTheft(
    refreshToken: string,
    tokenHash: string,
    rotatedAt: Date,
    sessionId: string,
    userId: string,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const withinGrace = this.now().getTime() - rotatedAt.getTime() <= this.config.REFRESH_REUSE_GRACE_S * 1000;
    if (withinGrace) {
      // The winner writes the pair right after its commit; wait briefly for it.
      for (let i = 0; i < 100; i++) {
        const sealed = await this.kv.get(graceKey(tokenHash));
        if (sealed) return JSON.parse(decrypt(keyFromSecret(refreshToken, "refresh-grace"), sealed)) as TokenResponse;
        await Bun.sleep(20);
      }
      throw invalidRefresh();
    }
    await this.revoke(sessionId);
    await this.audit.record({ type: "refresh_reuse", userId, meta, data: { sessionId } });
    throw new AuthError(401, "REFRESH_TOKEN_REUSED", "The refresh token was already used; the session has been revoked");
  }

  /**
   * Verifies a Bearer token. A token verified once is kept until it expires, so the signature is checked once per
   * token, not per request; revocation is checked on every call against the ids this instance holds in memory
   * (kept current by the `revoked` channel), so no round trip is needed while the subscription is live.
   */
  async authenticate(authorization: string | null | undefined): Promise<AuthInfo> {
    if (!authorization) throw new AuthError(401, "UNAUTHORIZED", "Authentication required");
    const nowMs = this.now().getTime();
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
        throw new AuthError(401, "TEAM_CLAIM_REVOKED", "The team in this token is no longer yours; refresh to get a new token");
      }
    }
    return entry.info;
  }

  private async verifyHeader(authorization: string): Promise<VerifiedToken> {
    const match = BEARER.exec(authorization);
    if (!match?.[1]) throw new AuthError(401, "INVALID_TOKEN", "The access token is invalid or has expired");
    const token = match[1];
    const claims: AccessClaims = await this.tokens.verify(token);
    const info: AuthInfo = { userId: claims.sub, sessionId: claims.sid, roles: claims.roles, amr: claims.amr, team: claims.team, token };
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

  /** Revokes one session: its refresh tokens stop at once and its access tokens are refused on every instance. */
  async revoke(sessionId: string): Promise<void> {
    await this.announceRevoked([sessionId]);
    await this.db.update(sessions).set({ revokedAt: this.now() }).where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
  }

  /** Revokes every live session of a user, but `exceptSessionId` when given. */
  async revokeAll(userId: string, exceptSessionId?: string): Promise<number> {
    const revoked = await this.db
      .update(sessions)
      .set({ revokedAt: this.now() })
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined))
      .returning({ id: sessions.id });
    await this.announceRevoked(revoked.map((s) => s.id));
    return revoked.length;
  }

  async list(userId: string, currentSessionId: string) {
    const rows = await this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, this.now())))
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
    const nowMs = this.now().getTime();
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

  /** Issues a fresh pair for an existing session (e.g. after a team switch), rotating its refresh token. */
  async reissue(sessionId: string): Promise<TokenResponse> {
    const now = this.now();
    const successor = randomToken(32);
    const row = await this.db.transaction(async (tx) => {
      const [s] = await tx.select().from(sessions).where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt))).limit(1);
      if (!s) return undefined;
      await tx
        .update(refreshTokens)
        .set({ rotatedAt: now })
        .where(and(eq(refreshTokens.sessionId, sessionId), isNull(refreshTokens.rotatedAt)));
      await tx.insert(refreshTokens).values(this.refreshRow(sessionId, successor, now));
      return s;
    });
    if (!row) throw errors.sessionRevoked();
    const user = await this.users.findById(row.userId);
    if (!user) throw errors.sessionRevoked();
    return this.tokenResponse(user, { sid: sessionId, amr: row.amr, team: teamOf(row) }, successor);
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
