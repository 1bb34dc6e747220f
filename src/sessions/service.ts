import { and, desc, eq, gt, isNull, lte, ne, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { AuditLog } from "../audit";
import type { Config } from "../config";
import { decrypt, encrypt, keyFromSecret, newId, randomToken, sha256 } from "../crypto";
import type { Db } from "../db";
import { revocations, type SessionRow, sessions, type UserRow, users } from "../db/schema";
import { coreError, errors, UnavailableError } from "../errors";
import type { KeyValueStore, Subscription } from "../kv";
import type { RateLimiter } from "../rate-limit";
import type { RequestMeta } from "../request";
import type { AccessClaims, AccessTokens, TeamClaim } from "../tokens/access";
import type { ServerSecrets } from "../tokens/keys";
import { type PublicUser, type PublicUserRow, publicUserColumns, type Users, violatedForeignKey } from "../users";
import { isUuid } from "../validation";
import { formatRefreshToken, parseRefreshToken, type RefreshToken } from "./refresh-token";
import { REVOKED_CHANNEL, REVOKED_SET, revocationTtlS, teamClaimEntry } from "./revocation-keys";

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
  /** Set on impersonation tokens: the admin acting as this user. */
  act?: { sub: string };
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

/**
 * What a change records inside its transaction: the sessions (or claims) it ends. They are written to Postgres in that
 * transaction and announced to every instance once it commits; each call answers how many it ended.
 */
export type Revoke = {
  session(sessionId: string): Promise<number>;
  allOf(userId: string, exceptSessionId?: string): Promise<number>;
  teamClaims(claims: Array<{ sessionId: string; team: TeamClaim }>): Promise<number>;
};

/** How long a failed announcement is tried again, in the background, before the revocation row alone must do. */
const ANNOUNCE_RETRY_MS = 1000;

type VerifiedToken = { info: Readonly<AuthInfo>; expiresAtMs: number; issuedAtS: number };

/** How long a revocation waits to hear its own message back before answering anyway. */
const ECHO_TIMEOUT_MS = 250;

/** What GET /auth/session answers from, and all an instance keeps per session: no secret, no password hash. */
type CurrentSession = {
  session: Pick<SessionRow, "id" | "userId" | "createdAt" | "expiresAt" | "amr">;
  user: PublicUserRow;
};

/** The team a session acts for, as an access token claims it. */
const teamOf = (session: Pick<SessionRow, "teamId" | "teamRole">): TeamClaim | undefined =>
  session.teamId && session.teamRole ? { id: session.teamId, role: session.teamRole } : undefined;

function prepareQueries(db: Db) {
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
          eq(sessions.id, sql.placeholder("sid")),
          eq(sessions.refreshGen, sql.placeholder("gen")),
          eq(sessions.refreshHash, sql.placeholder("hash")),
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, sql.placeholder("now")),
          gt(sessions.refreshExpiresAt, sql.placeholder("now")),
          gt(sessions.lastUsedAt, sql.placeholder("idleCutoff")),
          eq(users.id, sessions.userId),
        ),
      )
      .returning({
        session: { id: sessions.id, amr: sessions.amr, teamId: sessions.teamId, teamRole: sessions.teamRole, refreshGen: sessions.refreshGen },
        user: publicUserColumns,
      })
      .prepare("sessions_rotate"),
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
  /** Set once the revocations in force have been loaded from Postgres: until then no token is accepted. */
  private synced = false;
  private readonly retries = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    private readonly db: Db,
    private readonly kv: KeyValueStore,
    private readonly config: Config,
    private readonly tokens: AccessTokens,
    private readonly secrets: ServerSecrets,
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
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
  }

  /** Resolves once the revocations in force are loaded and the channel is live; rejects after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.synced && this.revocations.live)) {
      if (Date.now() > deadline) throw new UnavailableError("kv");
      await Bun.sleep(10);
    }
  }

  /** As long as any access token can live: impersonation tokens may outlive ordinary ones. */
  private get revocationTtlS() {
    return revocationTtlS(Math.max(this.config.ACCESS_TOKEN_TTL_S, this.config.IMPERSONATION_TTL_S));
  }

  /** Marks a session revoked in this instance and drops its cached tokens' verdicts. */
  private forget(sessionId: string, untilMs?: number): void {
    if (!sessionId) return;
    const t = this.now().getTime();
    this.revokedIds.set(sessionId, untilMs ?? t + this.revocationTtlS * 1000);
    this.currentCache.delete(sessionId);
    // Ids past the lifetime of any access token can go; sweeping on growth keeps the cost amortised.
    if (this.revokedIds.size % 1024 === 0) for (const [sid, until] of this.revokedIds) if (until <= t) this.revokedIds.delete(sid);
  }

  private dropCachedUser(userId: string): void {
    for (const [sid, entry] of this.currentCache) if (entry.row.user.id === userId) this.currentCache.delete(sid);
  }

  /**
   * At start and after each (re)connect of the channel: messages may have been missed, so every revocation still in
   * force is loaded from Postgres, the truth (the store's copy may be gone with a Redis restart).
   */
  private async resyncRevoked(): Promise<void> {
    const rows = await this.db
      .select({ entry: revocations.entry, expiresAt: revocations.expiresAt })
      .from(revocations)
      .where(gt(revocations.expiresAt, this.now()));
    for (const row of rows) this.forget(row.entry, row.expiresAt.getTime());
    this.synced = true;
  }

  /** When an entry (a session, or a session's team claim) was revoked, in ms; undefined when it is not. */
  private async revokedAt(id: string): Promise<number | undefined> {
    // Not sure to have heard every revocation (never loaded them, or the channel down longer than a backend may take
    // to answer): refusing with 503 is safe, accepting a revoked token is not.
    const down = this.revocations.downSince;
    if (!this.synced || (!this.revocations.live && down !== null && Date.now() - down > this.config.BACKEND_TIMEOUT_MS)) {
      throw new UnavailableError("kv");
    }
    const until = this.revokedIds.get(id);
    return until != null && until > this.now().getTime() ? until - this.revocationTtlS * 1000 : undefined;
  }

  /**
   * Runs `change` and the revocations it implies in one transaction: both commit, or neither. Once committed, the
   * revocations are announced to every instance.
   */
  async withRevocations<T>(change: (tx: Db, revoke: Revoke) => Promise<T>): Promise<T> {
    const entries: string[] = [];
    const result = await this.db.transaction(async (tx) => {
      const answer = await change(tx, this.revoker(tx, entries));
      await this.recordRevocations(tx, entries);
      return answer;
    });
    await this.announceRevoked(entries);
    return result;
  }

  private revoker(tx: Db, entries: string[]): Revoke {
    const add = (ids: string[]) => {
      entries.push(...ids);
      return ids.length;
    };
    return {
      session: async (sessionId) => {
        await tx.update(sessions).set({ revokedAt: this.now() }).where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
        return add([sessionId]);
      },
      allOf: async (userId, exceptSessionId) => {
        const revoked = await tx
          .update(sessions)
          .set({ revokedAt: this.now() })
          .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined))
          .returning({ id: sessions.id });
        return add(revoked.map((r) => r.id));
      },
      teamClaims: async (claims) => add(claims.map(({ sessionId, team }) => teamClaimEntry(sessionId, team))),
    };
  }

  /** Writes revocations to Postgres inside the caller's transaction; announce them once it commits. */
  async recordRevocations(tx: Db, entries: string[]): Promise<void> {
    if (entries.length === 0) return;
    const revokedAt = this.now();
    const expiresAt = new Date(revokedAt.getTime() + this.revocationTtlS * 1000);
    await tx
      .insert(revocations)
      .values(entries.map((entry) => ({ entry, revokedAt, expiresAt })))
      .onConflictDoUpdate({ target: revocations.entry, set: { revokedAt, expiresAt } });
  }

  /**
   * Tells every instance about committed revocations: the store (for fallbacks), then the channel. This instance
   * refuses them at once; should Redis fail now, the announcement is tried again in the background, and an instance
   * that lost the channel reloads them from Postgres.
   */
  private async announceRevoked(entries: string[], attempt = 0): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.forget(entry);
    try {
      await Promise.all(entries.map((entry) => this.kv.addExpiring(REVOKED_SET, entry, this.revocationTtlS)));
      const message = entries.join(",");
      const echoed = this.revocations.live ? this.echo(message) : undefined;
      await this.kv.publish(REVOKED_CHANNEL, message);
      // Redis writes a message to every subscriber's connection at once: once it is back here, the other instances
      // have it too, so the caller's next request is refused wherever it lands. Bounded, so a lost message cannot hang us.
      await echoed;
    } catch {
      if ((attempt + 1) * ANNOUNCE_RETRY_MS > this.revocationTtlS * 1000) return;
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        void this.announceRevoked(entries, attempt + 1);
      }, ANNOUNCE_RETRY_MS);
      timer.unref?.();
      this.retries.add(timer);
    }
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
  async create(user: UserRow, opts: { amr: string[]; meta: RequestMeta; team?: TeamClaim; sessionId?: string }): Promise<TokenResponse> {
    const now = this.now();
    const sessionId = opts.sessionId ?? newId();
    const secret = randomToken(32);
    // Use is recorded on the session (the guest sweep reads it from there), so a sign-in writes this one row.
    await this.queries.create
      .execute({
        id: sessionId,
        userId: user.id,
        amr: opts.amr,
        teamId: opts.team?.id ?? null,
        teamRole: opts.team?.role ?? null,
        ip: opts.meta.ip,
        userAgent: opts.meta.userAgent,
        now,
        expiresAt: new Date(now.getTime() + this.config.SESSION_MAX_AGE_S * 1000),
        ...this.chainLink(secret, now, null),
      })
      .catch((error: unknown) => {
        // The user was deleted while signing in: there is nobody left to make a session for.
        throw violatedForeignKey(error) ? errors.sessionRevoked() : error;
      });
    const refreshToken = await this.refreshToken({ sessionId, gen: 0, secret });
    return this.tokenResponse(user, { sid: sessionId, amr: opts.amr, team: opts.team }, refreshToken, now);
  }

  /**
   * A session in which `adminId` acts as `user`: its row makes it revocable like any other (a ban or a revocation of
   * the user's sessions ends it too), but it holds no refresh token and ends with its one access token.
   */
  async impersonate(user: UserRow, adminId: string, meta: RequestMeta): Promise<ImpersonationResponse> {
    const now = this.now();
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
    const accessToken = await this.tokens.sign({ sub: user.id, sid: sessionId, roles, amr, act: { sub: adminId } }, now, lifetimeS);
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
    claims: { sid: string; amr: string[]; team?: TeamClaim },
    refreshToken: string,
    issuedAt: Date,
  ): Promise<TokenResponse> {
    const roles = this.users.rolesOf(user);
    const accessToken = await this.tokens.sign({ sub: user.id, sid: claims.sid, roles, amr: claims.amr, team: claims.team }, issuedAt);
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
    const presented = parseRefreshToken(await this.refreshKey(), refreshToken);
    if (!presented) throw invalidRefresh();
    // The tag proves the server issued this token for this session, so nobody else can spend the session's limit.
    await this.rateLimit.hit("RATE_LIMIT_REFRESH_SESSION", presented.sessionId);
    const now = this.now();
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
    return this.tokenResponse(user, { sid: session.id, amr: session.amr, team: teamOf(session) }, token, now);
  }

  /** Answers a presented token that did not rotate: an ended session, a replay within the grace window, or theft. */
  private async refused(presented: RefreshToken, meta: RequestMeta): Promise<TokenResponse> {
    const [session] = await this.db.select().from(sessions).where(eq(sessions.id, presented.sessionId)).limit(1);
    const now = this.now();
    if (!session || session.revokedAt || session.expiresAt <= now) throw invalidRefresh();
    if (now.getTime() - session.lastUsedAt.getTime() > this.config.SESSION_IDLE_TIMEOUT_S * 1000) {
      await this.revoke(session.id);
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
      return this.tokenResponse(user, { sid: session.id, amr: session.amr, team: teamOf(session) }, token, session.refreshIssuedAt);
    }
    // An older generation of this session's own chain (the tag says so) came back after its successor was used: one
    // of the two holders is a thief, and which one cannot be told, so the session ends for both.
    await this.revoke(session.id);
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
    const info: AuthInfo = { userId: claims.sub, sessionId: claims.sid, roles: claims.roles, amr: claims.amr, team: claims.team, token };
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
    await this.withRevocations((_tx, revoke) => revoke.teamClaims(claims));
  }

  /** Refuses, on every instance, the access tokens of sessions whose rows are already gone (their user was deleted). */
  async announceEnded(sessionIds: string[]): Promise<void> {
    await this.announceRevoked(sessionIds);
  }

  /** Revokes one session: its refresh tokens stop at once and its access tokens are refused on every instance. */
  async revoke(sessionId: string): Promise<void> {
    await this.withRevocations((_tx, revoke) => revoke.session(sessionId));
  }

  /** Revokes every live session of a user, but `exceptSessionId` when given. */
  async revokeAll(userId: string, exceptSessionId?: string): Promise<number> {
    return this.withRevocations((_tx, revoke) => revoke.allOf(userId, exceptSessionId));
  }

  /** Deletes revocations no access token can need any more; safe on every instance at once. */
  async deleteExpiredRevocations(): Promise<number> {
    const gone = await this.db.delete(revocations).where(lte(revocations.expiresAt, this.now())).returning({ entry: revocations.entry });
    return gone.length;
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
    const secret = randomToken(32);
    const [session] = await this.db
      .update(sessions)
      .set({ refreshGen: sql`${sessions.refreshGen} + 1`, ...this.chainLink(secret, now, null) })
      .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
      .returning();
    if (!session) throw errors.sessionRevoked();
    const user = await this.users.findById(session.userId);
    if (!user) throw errors.sessionRevoked();
    const token = await this.refreshToken({ sessionId, gen: session.refreshGen, secret });
    return this.tokenResponse(user, { sid: sessionId, amr: session.amr, team: teamOf(session) }, token, now);
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
