import { and, desc, eq, gt, isNull, ne } from "drizzle-orm";
import type { AuditLog } from "../audit";
import type { Config } from "../config";
import { decrypt, encrypt, keyFromSecret, newId, randomToken, sha256 } from "../crypto";
import type { Db } from "../db";
import { refreshTokens, sessions, type UserRow, users } from "../db/schema";
import { AuthError } from "../errors";
import type { KeyValueStore } from "../kv";
import type { RateLimiter } from "../rate-limit";
import type { RequestMeta } from "../request";
import type { AccessClaims, AccessTokens, TeamClaim } from "../tokens/access";
import type { PublicUser, Users } from "../users";

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
const revokedKey = (sessionId: string) => `revoked:${sessionId}`;
const graceKey = (tokenHash: string) => `refresh-grace:${tokenHash}`;

export class Sessions {
  constructor(
    private readonly db: Db,
    private readonly kv: KeyValueStore,
    private readonly config: Config,
    private readonly tokens: AccessTokens,
    private readonly users: Users,
    private readonly audit: AuditLog,
    private readonly rateLimit: RateLimiter,
    private readonly now: () => Date,
  ) {}

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
    const [found] = await this.db
      .select({ token: refreshTokens, session: sessions })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, tokenHash))
      .limit(1);
    if (!found) throw invalidRefresh();
    const { token, session } = found;
    const now = this.now();
    await this.rateLimit.hit("RATE_LIMIT_REFRESH_SESSION", session.id);
    if (session.revokedAt || session.expiresAt <= now || token.expiresAt <= now) throw invalidRefresh();
    if (now.getTime() - session.lastUsedAt.getTime() > this.config.SESSION_IDLE_TIMEOUT_S * 1000) {
      await this.revoke(session.id);
      throw invalidRefresh();
    }
    if (token.rotatedAt) return this.replayOrTheft(refreshToken, tokenHash, token.rotatedAt, session.id, session.userId, meta);

    const user = await this.users.findById(session.userId);
    if (!user) throw invalidRefresh();
    const successor = randomToken(32);
    const won = await this.db.transaction(async (tx) => {
      const rotated = await tx
        .update(refreshTokens)
        .set({ rotatedAt: now })
        .where(and(eq(refreshTokens.id, token.id), isNull(refreshTokens.rotatedAt)))
        .returning({ id: refreshTokens.id });
      if (rotated.length === 0) return false;
      await tx.insert(refreshTokens).values(this.refreshRow(session.id, successor, now));
      await tx.update(sessions).set({ lastUsedAt: now }).where(eq(sessions.id, session.id));
      return true;
    });
    // Another request rotated this token a moment ago: answer as it did.
    if (!won) return this.replayOrTheft(refreshToken, tokenHash, now, session.id, session.userId, meta);

    const team = session.teamId && session.teamRole ? { id: session.teamId, role: session.teamRole } : undefined;
    const response = await this.tokenResponse(user, { sid: session.id, amr: session.amr, team }, successor);
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

  /** Verifies a Bearer token: signature and expiry in process, revocation in one KV round trip. */
  async authenticate(authorization: string | null | undefined): Promise<AuthInfo> {
    if (!authorization) throw new AuthError(401, "UNAUTHORIZED", "Authentication required");
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization);
    if (!match?.[1]) throw new AuthError(401, "INVALID_TOKEN", "The access token is invalid or has expired");
    const token = match[1];
    const claims: AccessClaims = await this.tokens.verify(token);
    if (await this.kv.get(revokedKey(claims.sid))) throw new AuthError(401, "SESSION_REVOKED", "The session has been revoked");
    return { userId: claims.sub, sessionId: claims.sid, roles: claims.roles, amr: claims.amr, team: claims.team, token };
  }

  /** Revokes one session: its refresh tokens stop at once and its access tokens are refused on every instance. */
  async revoke(sessionId: string): Promise<void> {
    await this.kv.set(revokedKey(sessionId), "1", this.config.ACCESS_TOKEN_TTL_S + 60);
    await this.db.update(sessions).set({ revokedAt: this.now() }).where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
  }

  /** Revokes every live session of a user, but `exceptSessionId` when given. */
  async revokeAll(userId: string, exceptSessionId?: string): Promise<number> {
    const live = await this.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(
        and(
          eq(sessions.userId, userId),
          isNull(sessions.revokedAt),
          exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined,
        ),
      );
    for (const s of live) await this.kv.set(revokedKey(s.id), "1", this.config.ACCESS_TOKEN_TTL_S + 60);
    if (live.length > 0) {
      await this.db
        .update(sessions)
        .set({ revokedAt: this.now() })
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined));
    }
    return live.length;
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
    if (!/^[0-9a-f-]{36}$/i.test(sessionId)) return undefined;
    const [row] = await this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
      .limit(1);
    return row;
  }

  /** The current session with its user, for GET /auth/session. */
  async current(auth: AuthInfo) {
    const [row] = await this.db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, auth.sessionId), isNull(sessions.revokedAt)))
      .limit(1);
    if (!row || row.session.userId !== auth.userId) throw new AuthError(401, "SESSION_REVOKED", "The session has been revoked");
    return row;
  }

  /** Sets the team a session acts for; later refreshes keep it. */
  async setTeam(sessionId: string, team: TeamClaim | null): Promise<void> {
    await this.db
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
    if (!row) throw new AuthError(401, "SESSION_REVOKED", "The session has been revoked");
    const user = await this.users.findById(row.userId);
    if (!user) throw new AuthError(401, "SESSION_REVOKED", "The session has been revoked");
    const team = row.teamId && row.teamRole ? { id: row.teamId, role: row.teamRole } : undefined;
    return this.tokenResponse(user, { sid: sessionId, amr: row.amr, team }, successor);
  }

  /** Drops the team from every session of a user acting for it; used when a member leaves or is removed. */
  async dropTeam(userId: string, teamId: string): Promise<string[]> {
    const rows = await this.db
      .update(sessions)
      .set({ teamId: null, teamRole: null })
      .where(and(eq(sessions.userId, userId), eq(sessions.teamId, teamId)))
      .returning({ id: sessions.id });
    return rows.map((r) => r.id);
  }

}
