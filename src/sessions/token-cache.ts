import type { Clock } from "../clock";
import { coreError } from "../errors";
import type { AccessClaims, AccessTokens, ActorClaim, TeamClaim } from "../tokens/access";

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

export type VerifiedToken = { info: Readonly<AuthInfo>; expiresAtMs: number; issuedAtS: number };

/** Verified tokens kept in memory; each entry is a few hundred bytes, so the cache stays under a few MB. */
const VERIFIED_CACHE_MAX = 10_000;
// The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` name it too.
const BEARER = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i;

/**
 * Verified Authorization headers until their token expires, least recently used first: a token's signature is checked
 * once, not per request. Whether its session still lives is not this cache's business (see Revocations).
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedToken>();

  constructor(
    private readonly tokens: AccessTokens,
    private readonly clock: Clock,
  ) {}

  /** The header's token, verified (once per token); throws INVALID_TOKEN / TOKEN_EXPIRED as the signature check does. */
  async verify(authorization: string): Promise<VerifiedToken> {
    const nowMs = this.clock.now().getTime();
    let entry = this.entries.get(authorization);
    if (entry && entry.expiresAtMs > nowMs) {
      this.entries.delete(authorization);
      this.entries.set(authorization, entry);
      return entry;
    }
    if (entry) this.entries.delete(authorization);
    entry = await this.verifyHeader(authorization);
    this.entries.set(authorization, entry);
    if (this.entries.size > VERIFIED_CACHE_MAX) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return entry;
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
}
