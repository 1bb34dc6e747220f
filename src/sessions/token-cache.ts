import type { Clock } from "../clock";
import { coreError } from "../errors";
import type { AccessClaims, AccessTokens, ActorClaim, TeamClaim } from "../tokens/access";
import { setBounded } from "./bounded";
import { internList } from "./intern";

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
};

export type VerifiedToken = { info: Readonly<AuthInfo>; expiresAtMs: number; issuedAtS: number };

/**
 * Verified tokens kept in memory. An entry is keyed by the SHA-256 of its header (44 bytes, not the ~450 of the token
 * itself) and holds the claims, ~300 bytes in all: 200,000 live tokens, more than one per live session of a busy
 * instance, take ~60 MB. An Ed25519 verification costs ~50-120 us, a digest and a lookup under 1 us.
 */
const VERIFIED_CACHE_MAX = 200_000;
// The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` name it too.
const BEARER = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i;

/**
 * Verified Authorization headers until their token expires, the oldest forgotten first: a token's signature is checked
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
    // A collision-resistant digest, so a header can only find the entry of the very same header.
    const key = Bun.SHA256.hash(authorization, "base64");
    let entry = this.entries.get(key);
    if (entry && entry.expiresAtMs > nowMs) return entry;
    // Expired: gone before the check that refuses it, so a token presented after its end holds no memory.
    if (entry) this.entries.delete(key);
    entry = await this.verifyHeader(authorization);
    setBounded(this.entries, key, entry, VERIFIED_CACHE_MAX);
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
      // Frozen and shared by every entry with the same list (intern.ts); typed as the claims are.
      roles: internList(claims.roles) as string[],
      amr: internList(claims.amr) as string[],
      team: claims.team,
      authTime: claims.auth_time,
    };
    if (claims.act) info.act = Object.freeze({ sub: claims.act.sub });
    // Shared by every request presenting this token, so nobody may change it.
    if (info.team) Object.freeze(info.team);
    return { info: Object.freeze(info), expiresAtMs: claims.exp * 1000, issuedAtS: claims.iat };
  }
}
