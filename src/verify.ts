/**
 * `bun-auth-server/verify`: access-token checks for other services (resource servers), with no round trip to the auth
 * server per request. The signature is checked against the server's JWKS (fetched once, cached, fetched again when a
 * token names a key it does not hold: a rotation); with the server's REDIS_URL (and KV_PREFIX), a revoked session is
 * refused at once, from the same Redis entries the server writes. Imports nothing of the server but those key names.
 */
import Redis from "ioredis";
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from "jose";
import { REVOKED_SET, revocationTtlS, teamClaimEntry } from "./sessions/revocation-keys";

export type TokenVerifierOptions = {
  /** The auth server's public URL (its PUBLIC_URL): the JWKS is read from `/.well-known/jwks.json` there. */
  serverUrl: string;
  /** Expected `iss` and `aud`: the server's JWT_ISSUER and JWT_AUDIENCE (by default its PUBLIC_URL and APP_URL). */
  issuer: string;
  audience: string;
  /** The server's REDIS_URL: without it a revoked session's tokens pass until they expire (ACCESS_TOKEN_TTL_S). */
  redisUrl?: string;
  /** The server's KV_PREFIX. */
  kvPrefix?: string;
  /** The server's ACCESS_TOKEN_TTL_S (default 900): it tells when a team claim was revoked. */
  accessTokenTtlS?: number;
  /** How long a Redis read may take before the check fails closed (503 UNAVAILABLE); default 3000. */
  timeoutMs?: number;
  /** Least time between two JWKS fetches caused by unknown key ids; default 30 s. */
  jwksCooldownMs?: number;
};

/** What a valid access token says about its caller. */
export type VerifiedAccessToken = {
  userId: string;
  sessionId: string;
  roles: string[];
  amr: string[];
  team?: { id: string; role: string };
  /** Epoch seconds of the session's last proof of a factor. */
  authTime?: number;
  /** The admin acting as this user, on impersonation tokens. */
  actorId?: string;
  expiresAt: Date;
  claims: Record<string, unknown>;
};

/** A refused token, with the status and code the auth server itself would answer. */
export class TokenRejectedError extends Error {
  constructor(
    readonly status: 401 | 503,
    readonly code: "INVALID_TOKEN" | "SESSION_REVOKED" | "TEAM_CLAIM_REVOKED" | "UNAVAILABLE",
    message: string,
  ) {
    super(message);
    this.name = "TokenRejectedError";
  }
}

const BEARER = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i;
const invalid = () => new TokenRejectedError(401, "INVALID_TOKEN", "The access token is invalid or has expired");

export type TokenVerifier = {
  /** Verifies a token, or an `Authorization: Bearer` header value; throws TokenRejectedError. */
  verify(tokenOrAuthorization: string): Promise<VerifiedAccessToken>;
  /** Closes the Redis connection. */
  close(): Promise<void>;
};

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", options.serverUrl), {
    cooldownDuration: options.jwksCooldownMs ?? 30_000,
    timeoutDuration: options.timeoutMs ?? 3000,
  });
  const timeoutMs = options.timeoutMs ?? 3000;
  const redis = options.redisUrl
    ? new Redis(options.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: timeoutMs, commandTimeout: timeoutMs })
    : undefined;
  // Failures surface per check as 503; the connection event would only repeat them.
  redis?.on("error", () => {});
  const revokedSet = `${options.kvPrefix ?? ""}${REVOKED_SET}`;
  const keptForMs = revocationTtlS(options.accessTokenTtlS ?? 900) * 1000;

  /** The epoch ms at which an entry was revoked, or undefined; as the server reads it (src/sessions/service.ts). */
  async function revokedAt(entry: string): Promise<number | undefined> {
    if (!redis) return undefined;
    let score: string | null;
    try {
      score = await redis.zscore(revokedSet, entry);
    } catch {
      // Fail closed, as the server does: a revocation we cannot read may exist.
      throw new TokenRejectedError(503, "UNAVAILABLE", "The revocation store is unreachable");
    }
    const until = score === null ? undefined : Number(score);
    return until !== undefined && until > Date.now() ? until - keptForMs : undefined;
  }

  return {
    async verify(tokenOrAuthorization) {
      const token = tokenOrAuthorization.includes(" ") ? BEARER.exec(tokenOrAuthorization)?.[1] : tokenOrAuthorization;
      if (!token) throw invalid();
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          algorithms: ["EdDSA"],
          issuer: options.issuer,
          audience: options.audience,
          typ: "at+jwt",
          requiredClaims: ["sub", "exp", "iat"],
        }));
      } catch (error) {
        if (error instanceof joseErrors.JWKSTimeout) throw new TokenRejectedError(503, "UNAVAILABLE", "The auth server's keys are unreachable");
        throw invalid();
      }
      const { sub, sid, roles, amr, team, auth_time, act, exp, iat } = payload;
      if (typeof sub !== "string" || typeof sid !== "string" || !Array.isArray(roles) || !Array.isArray(amr)) throw invalid();
      const teamClaim = team && typeof team === "object" ? (team as { id: string; role: string }) : undefined;
      if ((await revokedAt(sid)) !== undefined) throw new TokenRejectedError(401, "SESSION_REVOKED", "The session has been revoked");
      if (teamClaim) {
        const at = await revokedAt(teamClaimEntry(sid, teamClaim));
        // Tokens from the second of the revocation are refused too, as the server does: `iat` has no finer grain.
        if (at !== undefined && (iat as number) <= Math.floor(at / 1000)) {
          throw new TokenRejectedError(401, "TEAM_CLAIM_REVOKED", "The team in this token is no longer the caller's");
        }
      }
      return {
        userId: sub,
        sessionId: sid,
        roles: roles as string[],
        amr: amr as string[],
        team: teamClaim,
        authTime: typeof auth_time === "number" ? auth_time : undefined,
        actorId: act && typeof act === "object" ? (act as { sub?: string }).sub : undefined,
        expiresAt: new Date((exp as number) * 1000),
        claims: payload,
      };
    },
    async close() {
      redis?.disconnect();
    },
  };
}
