import type * as Arctic from "arctic";
import { createRemoteJWKSet, decodeJwt, type JWTPayload, jwtVerify } from "jose";
import { safeEqual } from "../../../src/crypto";
import { errors } from "../../../src/errors";
import { canonicalEmail } from "../../../src/users";
import { oauthError } from "../errors";

/**
 * What every provider shares: the profile and token types, the base classes (a code-exchange provider, and one whose
 * proof of identity is an OpenID Connect ID token), and the careful parsing of what providers answer. Each provider
 * lives in its own file beside this one; index.ts switches them on from the settings.
 */

export const PROVIDER_IDS = ["google", "github", "microsoft", "facebook", "oidc"] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];

/** What we learn about a person from a provider, already normalised. */
export type OAuthProfile = {
  providerAccountId: string;
  /** Canonical email, or null when the provider gave none (or one we cannot use). */
  email: string | null;
  /** True only when the provider states that it verified this email. */
  emailVerified: boolean;
  firstName: string | null;
  lastName: string | null;
  image: string | null;
};

/** The tokens a provider answers a code exchange with; only the fields we read. */
export type ProviderTokens = { accessToken: string; idToken?: string };

/** A credential a client got from the provider's own SDK, for the token sign-in route. */
export type ProviderCredential = { idToken?: string; accessToken?: string; nonce?: string };

export const PROVIDER_TIMEOUT_MS = 10_000;
/**
 * ID tokens issued longer ago than this are refused: an SDK hands the app a fresh one at each sign-in, so an old one is
 * more likely copied (from a log, another app of the same provider account) than just obtained.
 */
export const ID_TOKEN_MAX_AGE_S = 300;
/** Allowed disagreement between the provider's clock and ours, for exp and iat. */
const CLOCK_TOLERANCE_S = 30;
export const USER_AGENT = "bun-auth-server";

// arctic is 70 modules and about 1.3 MB once loaded, and only a redirect flow's start needs it: a server whose
// providers no one signs in with never loads it.
let arctic: Promise<typeof Arctic> | undefined;
export function loadArctic(): Promise<typeof Arctic> {
  arctic ??= import("arctic");
  return arctic;
}

export const oauthErrors = {
  providerNotFound: () => oauthError("PROVIDER_NOT_FOUND"),
  providerError: () => oauthError("OAUTH_PROVIDER_ERROR"),
  invalidIdToken: () => oauthError("INVALID_ID_TOKEN"),
  idTokenTooOld: () => oauthError("ID_TOKEN_TOO_OLD"),
  invalidAccessToken: () => oauthError("INVALID_ACCESS_TOKEN"),
  credentialRequired: (field: "idToken" | "accessToken") => errors.validation([{ path: field, message: "is required for this provider" }]),
};

export type ProviderEndpoints = { authorization: string; token: string };

/** One sign-in provider: where to send people, how to swap a code for tokens, and how to read who they are. */
export abstract class OAuthProvider {
  abstract readonly id: ProviderId;
  /** Scopes asked for in the redirect flow. */
  protected abstract readonly scopes: string[];
  /** OpenID Connect providers bind the ID token to the flow with a nonce. */
  abstract readonly usesNonce: boolean;
  /** How the client authenticates at the token endpoint: HTTP Basic, or id and secret in the form body. */
  protected tokenAuth: "basic" | "post" = "basic";
  /** The server's clock (set by createProviders), which judges the age of ID tokens. */
  now: () => Date = () => new Date();

  constructor(
    readonly clientId: string,
    protected readonly clientSecret: string,
  ) {}

  protected abstract endpoints(): Promise<ProviderEndpoints>;
  /** Who signed in, from the tokens of a finished redirect flow. */
  abstract profileFromTokens(tokens: ProviderTokens, nonce: string | undefined): Promise<OAuthProfile>;
  /** Who signed in, from a credential a client obtained itself; verified with the provider. */
  abstract profileFromCredential(credential: ProviderCredential): Promise<OAuthProfile>;

  async authorizationUrl(input: { redirectUri: string; state: string; codeVerifier: string; nonce?: string }): Promise<string> {
    const { authorization } = await this.endpoints();
    const { CodeChallengeMethod, OAuth2Client } = await loadArctic();
    const client = new OAuth2Client(this.clientId, this.clientSecret, input.redirectUri);
    const url = client.createAuthorizationURLWithPKCE(authorization, input.state, CodeChallengeMethod.S256, input.codeVerifier, this.scopes);
    if (input.nonce) url.searchParams.set("nonce", input.nonce);
    return url.toString();
  }

  /** Swaps an authorization code for tokens (RFC 6749 §4.1.3 with the PKCE verifier). */
  async exchangeCode(input: { code: string; codeVerifier: string; redirectUri: string }): Promise<ProviderTokens> {
    const { token } = await this.endpoints();
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code: input.code,
      redirect_uri: input.redirectUri,
      code_verifier: input.codeVerifier,
    });
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      // GitHub answers form-encoded unless asked for JSON.
      accept: "application/json",
      "user-agent": USER_AGENT,
    };
    if (this.tokenAuth === "basic") {
      headers.authorization = `Basic ${btoa(`${encodeURIComponent(this.clientId)}:${encodeURIComponent(this.clientSecret)}`)}`;
    } else {
      body.set("client_id", this.clientId);
      body.set("client_secret", this.clientSecret);
    }
    const data = await fetchJson(token, { method: "POST", headers, body });
    // GitHub reports a bad code with 200 and an `error` field, so the token's presence is the test.
    const accessToken = stringField(data, "access_token");
    if (!accessToken) throw oauthErrors.providerError();
    return { accessToken, idToken: stringField(data, "id_token") };
  }
}

/** Fetches JSON from a provider; any network failure, non-2xx or non-JSON answer is a provider error. */
export async function fetchJson(url: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS) });
  } catch {
    throw oauthErrors.providerError();
  }
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok || typeof data !== "object" || data === null || Array.isArray(data)) throw oauthErrors.providerError();
  return data as Record<string, unknown>;
}

export function stringField(data: Record<string, unknown>, key: string): string | undefined {
  const value = data[key];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

export function idOf(value: unknown): string | undefined {
  if (typeof value === "string" && value.length > 0) return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

export function splitName(name: string | undefined): { firstName: string | null; lastName: string | null } {
  const parts = name?.trim().split(/\s+/).filter(Boolean) ?? [];
  if (parts.length === 0) return { firstName: null, lastName: null };
  return { firstName: parts[0] ?? null, lastName: parts.length > 1 ? parts.slice(1).join(" ") : null };
}

/** Profile fields are free text from another party: bound them so they fit our columns and pages. */
export function bounded(value: unknown, max: number): string | null {
  return typeof value === "string" && value.trim().length > 0 ? value.trim().slice(0, max) : null;
}

export function httpsImage(value: unknown): string | null {
  const raw = bounded(value, 2048);
  if (!raw) return null;
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  } catch {
    return null;
  }
}

export type IdTokenRules = {
  jwksUrl: string;
  /** The expected issuer, which may depend on the token (Microsoft's multi-tenant issuer names the tenant). */
  issuer: (claims: JWTPayload) => string | string[];
};

/** A provider whose identity proof is an OpenID Connect ID token. */
export abstract class IdTokenProvider extends OAuthProvider {
  readonly usesNonce = true;
  private jwks?: { url: string; keys: ReturnType<typeof createRemoteJWKSet> };

  protected abstract idTokenRules(): Promise<IdTokenRules>;
  /** Whether the provider vouches for the email claim (providers word this differently). */
  protected abstract emailVerified(claims: JWTPayload): boolean;

  /**
   * Checks signature (by the provider's JWKS), iss, aud (our client id), exp, iat (at most ID_TOKEN_MAX_AGE_S ago, never
   * ahead of us) and the nonce: a token that carries one is refused unless the same one is given (a token minted for
   * another app's sign-in of this person cannot be replayed here), and a nonce given must be in the token.
   */
  protected async verifyIdToken(idToken: string, nonce: string | undefined): Promise<JWTPayload> {
    const rules = await this.idTokenRules();
    if (this.jwks?.url !== rules.jwksUrl) {
      this.jwks = { url: rules.jwksUrl, keys: createRemoteJWKSet(new URL(rules.jwksUrl), { timeoutDuration: PROVIDER_TIMEOUT_MS }) };
    }
    let claims: JWTPayload;
    try {
      const issuer = rules.issuer(decodeJwt(idToken));
      ({ payload: claims } = await jwtVerify(idToken, this.jwks.keys, {
        issuer,
        audience: this.clientId,
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: this.now(),
      }));
    } catch {
      throw oauthErrors.invalidIdToken();
    }
    const carried = claims.nonce;
    if (carried !== undefined || nonce !== undefined) {
      if (typeof carried !== "string" || nonce === undefined || !safeEqual(carried, nonce)) throw oauthErrors.invalidIdToken();
    }
    const ageS = Math.floor(this.now().getTime() / 1000) - Number(claims.iat);
    if (ageS < -CLOCK_TOLERANCE_S) throw oauthErrors.invalidIdToken();
    if (ageS > ID_TOKEN_MAX_AGE_S + CLOCK_TOLERANCE_S) throw oauthErrors.idTokenTooOld();
    return claims;
  }

  protected profileFromClaims(claims: JWTPayload): OAuthProfile {
    const email = canonicalEmail(claims.email);
    const fallback = splitName(typeof claims.name === "string" ? claims.name : undefined);
    return {
      providerAccountId: String(claims.sub),
      email,
      emailVerified: email !== null && this.emailVerified(claims),
      firstName: bounded(claims.given_name, 100) ?? fallback.firstName,
      lastName: bounded(claims.family_name, 100) ?? fallback.lastName,
      image: httpsImage(claims.picture),
    };
  }

  async profileFromTokens(tokens: ProviderTokens, nonce: string | undefined): Promise<OAuthProfile> {
    if (!tokens.idToken) throw oauthErrors.invalidIdToken();
    return this.profileFromClaims(await this.verifyIdToken(tokens.idToken, nonce));
  }

  async profileFromCredential(credential: ProviderCredential): Promise<OAuthProfile> {
    if (!credential.idToken) throw oauthErrors.credentialRequired("idToken");
    return this.profileFromClaims(await this.verifyIdToken(credential.idToken, credential.nonce));
  }
}
