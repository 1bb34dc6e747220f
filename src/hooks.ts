import type { PublicUser } from "./users";

/** A session as hooks see it. */
export type SessionInfo = { id: string; amr: string[]; ip: string | null; userAgent: string | null };
/** What `beforeSignUp` is told: `email` is null for a guest; `method` names the path (password, magic-code, anonymous, oauth:<provider>, invitation). */
export type SignUpAttempt = { email: string | null; method: string; ip: string | null; userAgent: string | null };

/**
 * In-process hooks of library mode: `createAuthServer(options, { hooks })`. Each may be async and is awaited. An
 * `AuthError` thrown by one answers exactly that; any other throw answers 500 INTERNAL_ERROR with a log line.
 */
export type AuthHooks = {
  /** Runs before every path that creates an account; a throw refuses it, before anything is written. */
  beforeSignUp?(attempt: SignUpAttempt): unknown;
  /** Runs after every new session (not a refresh or an impersonation); a throw revokes that session. */
  afterSignIn?(user: PublicUser, session: SessionInfo): unknown;
  /**
   * Extra claims merged into every access token issued; reserved names are refused. Asked before anything the token
   * stands for is written (a session, a rotation, a team switch, a reauth), so a throw leaves the session as it was.
   */
  accessTokenClaims?(user: PublicUser, session: SessionInfo): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
};

export const RESERVED_CLAIMS = new Set(["sub", "sid", "roles", "amr", "team", "auth_time", "act", "iss", "aud", "iat", "exp", "nbf", "jti", "typ"]);

/** The claims a hook returned, or an Error (a 500 at request time, a refused start) naming the first reserved one. */
function checkedClaims(claims: unknown): Record<string, unknown> | undefined {
  if (claims === undefined || claims === null) return undefined;
  if (typeof claims !== "object" || Array.isArray(claims)) throw new Error("accessTokenClaims must return an object of claims");
  const reserved = Object.keys(claims).find((name) => RESERVED_CLAIMS.has(name));
  if (reserved) throw new Error(`accessTokenClaims returned the reserved claim "${reserved}"`);
  return claims as Record<string, unknown>;
}

const SAMPLE_USER: PublicUser = {
  id: "00000000-0000-7000-8000-000000000000",
  email: "sample@example.com",
  emailVerified: true,
  username: null,
  firstName: "Sample",
  lastName: "User",
  image: null,
  roles: ["user"],
  isAnonymous: false,
  mfaEnabled: false,
  createdAt: new Date(0).toISOString(),
};
const SAMPLE_SESSION: SessionInfo = { id: "00000000-0000-7000-8000-000000000001", amr: ["pwd"], ip: null, userAgent: null };

/**
 * The accessTokenClaims hook as Sessions calls it, after one call at start with a sample user: a reserved name there
 * stops the server (the hook is wrong for every user), later it fails that request with 500.
 */
export async function claimsHook(hooks: AuthHooks): Promise<((user: PublicUser, session: SessionInfo) => Promise<Record<string, unknown> | undefined>) | undefined> {
  const hook = hooks.accessTokenClaims;
  if (!hook) return undefined;
  try {
    checkedClaims(await hook(SAMPLE_USER, SAMPLE_SESSION));
  } catch (error) {
    throw new Error(`hooks.accessTokenClaims: ${error instanceof Error ? error.message : String(error)}`);
  }
  return async (user, session) => checkedClaims(await hook(user, session));
}
