import type { TeamClaim } from "../tokens/access";

/**
 * Where revocations live in the KV store. The server writes them (src/sessions/service.ts) and the verify helper of
 * other services reads them (src/verify.ts): one definition, so the two cannot drift apart.
 */

/** Every instance listens here for revoked session ids (comma-separated). */
export const REVOKED_CHANNEL = "revoked";
/**
 * An expiring set: each revoked entry (a session id, or a session's team claim) scored by the epoch ms at which no
 * access token it refuses can still be valid. Instances resync from it on reconnect, and ask it while disconnected.
 */
export const REVOKED_SET = "revoked-sessions";

/** A revocation entry that refuses only a session's tokens carrying this exact team claim (a member left, or changed role). */
export const teamClaimEntry = (sessionId: string, team: TeamClaim) => `${sessionId}/team:${team.id}:${team.role}`;

/** How long a revocation is kept: past the lifetime of any access token it refuses, with a minute of clock skew. */
export const revocationTtlS = (accessTokenTtlS: number) => accessTokenTtlS + 60;
