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

/** What GET /auth/session answers of the session itself, which never changes while the session lives. */
export type SessionPart = { createdAt: Date; expiresAt: Date; amr: string[] };

/**
 * A verified token: the caller as the routes see it (frozen: every request presenting the token shares it), when the
 * token ends, and, once GET /auth/session has read it, its session's part of the answer. That part lives in the
 * token's own entry, in private fields a freeze leaves writable, so a session costs one entry and one object, not an
 * entry in a second map: it goes when the token does, and a revoked session never reaches it (revocation is checked
 * first on every request).
 */
export class VerifiedToken implements AuthInfo {
  readonly userId: string;
  readonly sessionId: string;
  readonly roles: string[];
  readonly amr: string[];
  readonly team?: TeamClaim;
  readonly authTime: number;
  readonly act?: ActorClaim;
  readonly expiresAtMs: number;
  readonly issuedAtS: number;
  // Times as numbers: a Date each would be two more objects per session.
  #sessionCreatedAtMs = 0;
  #sessionExpiresAtMs = 0;
  #sessionAmr: string[] | undefined;

  constructor(claims: AccessClaims) {
    this.userId = claims.sub;
    this.sessionId = claims.sid;
    // Frozen and shared by every entry with the same list (intern.ts); typed as the claims are.
    this.roles = internList(claims.roles) as string[];
    this.amr = internList(claims.amr) as string[];
    if (claims.team) this.team = Object.freeze(claims.team);
    this.authTime = claims.auth_time;
    if (claims.act) this.act = Object.freeze({ sub: claims.act.sub });
    this.expiresAtMs = claims.exp * 1000;
    this.issuedAtS = claims.iat;
    Object.freeze(this);
  }

  /** The session's part of GET /auth/session, if kept, named by its ids (a fresh object each time: callers own it). */
  session(): (SessionPart & { id: string; userId: string }) | undefined {
    if (!this.#sessionAmr) return undefined;
    return {
      id: this.sessionId,
      userId: this.userId,
      createdAt: new Date(this.#sessionCreatedAtMs),
      expiresAt: new Date(this.#sessionExpiresAtMs),
      amr: this.#sessionAmr,
    };
  }

  keepSession(part: SessionPart): void {
    this.#sessionCreatedAtMs = part.createdAt.getTime();
    this.#sessionExpiresAtMs = part.expiresAt.getTime();
    this.#sessionAmr = internList(part.amr) as string[];
  }
}

/**
 * Verified tokens kept in memory. An entry is keyed by the SHA-256 of its header (44 bytes, not the ~450 of the token
 * itself) and holds the claims and its session's part of GET /auth/session: 200,000 live tokens, more than one per
 * live session of a busy instance, take ~60 MB. An Ed25519 verification costs ~50-120 us, a digest and a lookup under 1 us.
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
    return new VerifiedToken(await this.tokens.verify(match[1]));
  }
}
