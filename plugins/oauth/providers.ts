import { CodeChallengeMethod, OAuth2Client } from "arctic";
import { createRemoteJWKSet, decodeJwt, type JWTPayload, jwtVerify } from "jose";
import type { Config } from "../../src/config";
import { errors } from "../../src/errors";
import { canonicalEmail } from "../../src/users";
import { oauthError } from "./errors";

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

const PROVIDER_TIMEOUT_MS = 10_000;
const USER_AGENT = "bun-auth-server";

export const oauthErrors = {
  providerNotFound: () => oauthError("PROVIDER_NOT_FOUND"),
  providerError: () => oauthError("OAUTH_PROVIDER_ERROR"),
  invalidIdToken: () => oauthError("INVALID_ID_TOKEN"),
  invalidAccessToken: () => oauthError("INVALID_ACCESS_TOKEN"),
  credentialRequired: (field: "idToken" | "accessToken") => errors.validation([{ path: field, message: "is required for this provider" }]),
};

type ProviderEndpoints = { authorization: string; token: string };

/** One sign-in provider: where to send people, how to swap a code for tokens, and how to read who they are. */
export abstract class OAuthProvider {
  abstract readonly id: ProviderId;
  /** Scopes asked for in the redirect flow. */
  protected abstract readonly scopes: string[];
  /** OpenID Connect providers bind the ID token to the flow with a nonce. */
  abstract readonly usesNonce: boolean;
  /** How the client authenticates at the token endpoint: HTTP Basic, or id and secret in the form body. */
  protected tokenAuth: "basic" | "post" = "basic";

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
async function fetchJson(url: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
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

function stringField(data: Record<string, unknown>, key: string): string | undefined {
  const value = data[key];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function idOf(value: unknown): string | undefined {
  if (typeof value === "string" && value.length > 0) return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function splitName(name: string | undefined): { firstName: string | null; lastName: string | null } {
  const parts = name?.trim().split(/\s+/).filter(Boolean) ?? [];
  if (parts.length === 0) return { firstName: null, lastName: null };
  return { firstName: parts[0] ?? null, lastName: parts.length > 1 ? parts.slice(1).join(" ") : null };
}

/** Profile fields are free text from another party: bound them so they fit our columns and pages. */
function bounded(value: unknown, max: number): string | null {
  return typeof value === "string" && value.trim().length > 0 ? value.trim().slice(0, max) : null;
}

function httpsImage(value: unknown): string | null {
  const raw = bounded(value, 2048);
  if (!raw) return null;
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  } catch {
    return null;
  }
}

type IdTokenRules = {
  jwksUrl: string;
  /** The expected issuer, which may depend on the token (Microsoft's multi-tenant issuer names the tenant). */
  issuer: (claims: JWTPayload) => string | string[];
};

/** A provider whose identity proof is an OpenID Connect ID token. */
abstract class IdTokenProvider extends OAuthProvider {
  readonly usesNonce = true;
  private jwks?: { url: string; keys: ReturnType<typeof createRemoteJWKSet> };

  protected abstract idTokenRules(): Promise<IdTokenRules>;
  /** Whether the provider vouches for the email claim (providers word this differently). */
  protected abstract emailVerified(claims: JWTPayload): boolean;

  /** Checks signature (by the provider's JWKS), iss, aud (our client id), exp and, when given, the nonce. */
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
        clockTolerance: 30,
      }));
    } catch {
      throw oauthErrors.invalidIdToken();
    }
    if (nonce !== undefined && claims.nonce !== nonce) throw oauthErrors.invalidIdToken();
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

class GoogleProvider extends IdTokenProvider {
  readonly id = "google";
  protected readonly scopes = ["openid", "email", "profile"];

  constructor(private readonly config: Config, clientId: string, clientSecret: string) {
    super(clientId, clientSecret);
  }

  protected async endpoints(): Promise<ProviderEndpoints> {
    return {
      authorization: this.config.OAUTH_GOOGLE_AUTHORIZATION_URL ?? "https://accounts.google.com/o/oauth2/v2/auth",
      token: this.config.OAUTH_GOOGLE_TOKEN_URL ?? "https://oauth2.googleapis.com/token",
    };
  }

  protected async idTokenRules(): Promise<IdTokenRules> {
    const configured = this.config.OAUTH_GOOGLE_ISSUER;
    return {
      jwksUrl: this.config.OAUTH_GOOGLE_JWKS_URL ?? "https://www.googleapis.com/oauth2/v3/certs",
      // Google documents both spellings of its issuer.
      issuer: () => configured ?? ["https://accounts.google.com", "accounts.google.com"],
    };
  }

  protected emailVerified(claims: JWTPayload): boolean {
    return claims.email_verified === true;
  }
}

const MICROSOFT_SHARED_TENANTS = new Set(["common", "organizations", "consumers"]);

class MicrosoftProvider extends IdTokenProvider {
  readonly id = "microsoft";
  protected readonly scopes = ["openid", "email", "profile"];

  constructor(private readonly config: Config, clientId: string, clientSecret: string) {
    super(clientId, clientSecret);
  }

  private get base(): string {
    return `https://login.microsoftonline.com/${encodeURIComponent(this.config.OAUTH_MICROSOFT_TENANT)}`;
  }

  protected async endpoints(): Promise<ProviderEndpoints> {
    return {
      authorization: this.config.OAUTH_MICROSOFT_AUTHORIZATION_URL ?? `${this.base}/oauth2/v2.0/authorize`,
      token: this.config.OAUTH_MICROSOFT_TOKEN_URL ?? `${this.base}/oauth2/v2.0/token`,
    };
  }

  protected async idTokenRules(): Promise<IdTokenRules> {
    const tenant = this.config.OAUTH_MICROSOFT_TENANT;
    // Multi-tenant apps get tokens whose issuer names the user's tenant: `{tenantid}` is filled from the `tid` claim.
    const template =
      this.config.OAUTH_MICROSOFT_ISSUER ??
      (MICROSOFT_SHARED_TENANTS.has(tenant) ? "https://login.microsoftonline.com/{tenantid}/v2.0" : `https://login.microsoftonline.com/${tenant}/v2.0`);
    return {
      jwksUrl: this.config.OAUTH_MICROSOFT_JWKS_URL ?? `${this.base}/discovery/v2.0/keys`,
      issuer: (claims) => template.replace("{tenantid}", typeof claims.tid === "string" ? claims.tid : "\0"),
    };
  }

  /**
   * Entra ID lets tenant admins set any email on an account, so its `email` claim proves nothing by itself
   * ("nOAuth"); only the optional `xms_edov` claim (email domain owner verified) or an explicit `email_verified` does.
   */
  protected emailVerified(claims: JWTPayload): boolean {
    return claims.xms_edov === true || claims.email_verified === true;
  }
}

type Discovery = { issuer: string; authorization: string; token: string; jwksUrl: string; userinfo?: string };

class OidcProvider extends IdTokenProvider {
  readonly id = "oidc";
  protected readonly scopes = ["openid", "email", "profile"];
  private discovery?: Promise<Discovery>;

  constructor(private readonly issuer: string, clientId: string, clientSecret: string) {
    super(clientId, clientSecret);
  }

  /** Discovery document, fetched once and kept; a failed fetch is forgotten so the next request retries. */
  private discover(): Promise<Discovery> {
    this.discovery ??= this.fetchDiscovery().catch((error: unknown) => {
      this.discovery = undefined;
      throw error;
    });
    return this.discovery;
  }

  private async fetchDiscovery(): Promise<Discovery> {
    const base = this.issuer.replace(/\/+$/, "");
    const doc = await fetchJson(`${base}/.well-known/openid-configuration`, { headers: { accept: "application/json" } });
    const issuer = stringField(doc, "issuer");
    const authorization = stringField(doc, "authorization_endpoint");
    const token = stringField(doc, "token_endpoint");
    const jwksUrl = stringField(doc, "jwks_uri");
    // OpenID Connect Discovery §4.3: the document's issuer must be the one we asked.
    if (!issuer || issuer.replace(/\/+$/, "") !== base || !authorization || !token || !jwksUrl) throw oauthErrors.providerError();
    const methods = doc.token_endpoint_auth_methods_supported;
    // Basic is the spec's default; use the form body only for a provider that supports nothing else.
    const postOnly = Array.isArray(methods) && methods.includes("client_secret_post") && !methods.includes("client_secret_basic");
    this.tokenAuth = postOnly ? "post" : "basic";
    return { issuer, authorization, token, jwksUrl, userinfo: stringField(doc, "userinfo_endpoint") };
  }

  protected async endpoints(): Promise<ProviderEndpoints> {
    const { authorization, token } = await this.discover();
    return { authorization, token };
  }

  protected async idTokenRules(): Promise<IdTokenRules> {
    const { issuer, jwksUrl } = await this.discover();
    return { jwksUrl, issuer: () => issuer };
  }

  /** The issuer as its discovery document names it, for checking the `iss` parameter of a callback (RFC 9207). */
  async expectedIssuer(): Promise<string> {
    return (await this.discover()).issuer;
  }

  protected emailVerified(claims: JWTPayload): boolean {
    return claims.email_verified === true;
  }

  /** Many providers put profile claims only in userinfo; the ID token stays the proof of who signed in. */
  async profileFromTokens(tokens: ProviderTokens, nonce: string | undefined): Promise<OAuthProfile> {
    if (!tokens.idToken) throw oauthErrors.invalidIdToken();
    const claims = await this.verifyIdToken(tokens.idToken, nonce);
    const { userinfo } = await this.discover();
    if (!userinfo) return this.profileFromClaims(claims);
    const info = await fetchJson(userinfo, { headers: { authorization: `Bearer ${tokens.accessToken}`, accept: "application/json" } });
    // OpenID Connect Core §5.3.2: userinfo of another subject must not be used.
    if (info.sub !== claims.sub) throw oauthErrors.providerError();
    return this.profileFromClaims({ ...claims, ...pickProfileClaims(info) });
  }
}

/** Claims userinfo may carry that the ID token left out (or carried with less detail). */
function pickProfileClaims(info: Record<string, unknown>): JWTPayload {
  const out: JWTPayload = {};
  for (const key of ["email", "email_verified", "name", "given_name", "family_name", "picture"]) {
    if (info[key] !== undefined) out[key] = info[key];
  }
  return out;
}

class GitHubProvider extends OAuthProvider {
  readonly id = "github";
  readonly usesNonce = false;
  protected readonly scopes = ["read:user", "user:email"];
  protected tokenAuth = "post" as const;

  constructor(private readonly config: Config, clientId: string, clientSecret: string) {
    super(clientId, clientSecret);
  }

  private get api(): string {
    return (this.config.OAUTH_GITHUB_API_URL ?? "https://api.github.com").replace(/\/+$/, "");
  }

  protected async endpoints(): Promise<ProviderEndpoints> {
    return {
      authorization: this.config.OAUTH_GITHUB_AUTHORIZATION_URL ?? "https://github.com/login/oauth/authorize",
      token: this.config.OAUTH_GITHUB_TOKEN_URL ?? "https://github.com/login/oauth/access_token",
    };
  }

  private async apiGet(path: string, accessToken: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.api}${path}`, {
        headers: { authorization: `Bearer ${accessToken}`, accept: "application/vnd.github+json", "user-agent": USER_AGENT },
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
    } catch {
      throw oauthErrors.providerError();
    }
    if (response.status === 401) throw oauthErrors.invalidAccessToken();
    if (!response.ok) throw oauthErrors.providerError();
    return response.json().catch(() => {
      throw oauthErrors.providerError();
    });
  }

  async profileFromTokens(tokens: ProviderTokens): Promise<OAuthProfile> {
    const user = (await this.apiGet("/user", tokens.accessToken)) as Record<string, unknown> | null;
    const emails = await this.apiGet("/user/emails", tokens.accessToken);
    const id = idOf(user?.id);
    if (!user || !id) throw oauthErrors.providerError();
    // The primary verified address; the profile's public `email` says nothing about verification.
    const listed = Array.isArray(emails) ? (emails as Array<Record<string, unknown>>) : [];
    const primary = listed.find((e) => e.primary === true && e.verified === true) ?? listed.find((e) => e.verified === true);
    const email = canonicalEmail(primary?.email);
    return {
      providerAccountId: id,
      email,
      emailVerified: email !== null,
      ...splitName(bounded(user.name, 200) ?? undefined),
      image: httpsImage(user.avatar_url),
    };
  }

  /**
   * A GitHub token from any app would read /user, so first ask GitHub whether it was issued to our app
   * (POST /applications/{client_id}/token, authenticated as the app); otherwise a token given to some other
   * site could sign its holder in here.
   */
  async profileFromCredential(credential: ProviderCredential): Promise<OAuthProfile> {
    if (!credential.accessToken) throw oauthErrors.credentialRequired("accessToken");
    let response: Response;
    try {
      response = await fetch(`${this.api}/applications/${encodeURIComponent(this.clientId)}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${btoa(`${this.clientId}:${this.clientSecret}`)}`,
          accept: "application/vnd.github+json",
          "content-type": "application/json",
          "user-agent": USER_AGENT,
        },
        body: JSON.stringify({ access_token: credential.accessToken }),
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
    } catch {
      throw oauthErrors.providerError();
    }
    await response.body?.cancel();
    if (response.status === 404 || response.status === 422) throw oauthErrors.invalidAccessToken();
    if (!response.ok) throw oauthErrors.providerError();
    return this.profileFromTokens({ accessToken: credential.accessToken });
  }
}

class FacebookProvider extends OAuthProvider {
  readonly id = "facebook";
  readonly usesNonce = false;
  protected readonly scopes = ["email", "public_profile"];
  protected tokenAuth = "post" as const;

  constructor(private readonly config: Config, clientId: string, clientSecret: string) {
    super(clientId, clientSecret);
  }

  private get graph(): string {
    return (this.config.OAUTH_FACEBOOK_GRAPH_URL ?? "https://graph.facebook.com/v21.0").replace(/\/+$/, "");
  }

  protected async endpoints(): Promise<ProviderEndpoints> {
    return {
      authorization: this.config.OAUTH_FACEBOOK_AUTHORIZATION_URL ?? "https://www.facebook.com/v21.0/dialog/oauth",
      token: this.config.OAUTH_FACEBOOK_TOKEN_URL ?? `${this.graph}/oauth/access_token`,
    };
  }

  /**
   * Facebook does not say whether it verified an email, so its emails never count as verified: they never
   * take over an existing account; the owner links Facebook from inside instead.
   */
  async profileFromTokens(tokens: ProviderTokens): Promise<OAuthProfile> {
    const url = new URL(`${this.graph}/me`);
    url.searchParams.set("fields", "id,email,name,first_name,last_name,picture");
    url.searchParams.set("access_token", tokens.accessToken);
    const me = await fetchJson(url.toString());
    const id = idOf(me.id);
    if (!id) throw oauthErrors.providerError();
    const picture = (me.picture as { data?: { url?: unknown } } | undefined)?.data?.url;
    const fallback = splitName(bounded(me.name, 200) ?? undefined);
    return {
      providerAccountId: id,
      email: canonicalEmail(me.email),
      emailVerified: false,
      firstName: bounded(me.first_name, 100) ?? fallback.firstName,
      lastName: bounded(me.last_name, 100) ?? fallback.lastName,
      image: httpsImage(picture),
    };
  }

  /** debug_token with our app token: the token must be valid and issued to our app. */
  async profileFromCredential(credential: ProviderCredential): Promise<OAuthProfile> {
    if (!credential.accessToken) throw oauthErrors.credentialRequired("accessToken");
    const url = new URL(`${this.graph}/debug_token`);
    url.searchParams.set("input_token", credential.accessToken);
    url.searchParams.set("access_token", `${this.clientId}|${this.clientSecret}`);
    const debug = await fetchJson(url.toString());
    const data = debug.data as Record<string, unknown> | undefined;
    if (data?.is_valid !== true || idOf(data.app_id) !== this.clientId) throw oauthErrors.invalidAccessToken();
    const profile = await this.profileFromTokens({ accessToken: credential.accessToken });
    if (idOf(data.user_id) !== undefined && idOf(data.user_id) !== profile.providerAccountId) throw oauthErrors.invalidAccessToken();
    return profile;
  }
}

export function isOidcProvider(provider: OAuthProvider): provider is OidcProvider {
  return provider instanceof OidcProvider;
}

/** The providers switched on by configuration: each needs its client id and secret (and OIDC its issuer). */
export function createProviders(config: Config): Map<string, OAuthProvider> {
  const providers = new Map<string, OAuthProvider>();
  const add = (provider: OAuthProvider) => providers.set(provider.id, provider);
  if (config.OAUTH_GOOGLE_CLIENT_ID && config.OAUTH_GOOGLE_CLIENT_SECRET) {
    add(new GoogleProvider(config, config.OAUTH_GOOGLE_CLIENT_ID, config.OAUTH_GOOGLE_CLIENT_SECRET));
  }
  if (config.OAUTH_GITHUB_CLIENT_ID && config.OAUTH_GITHUB_CLIENT_SECRET) {
    add(new GitHubProvider(config, config.OAUTH_GITHUB_CLIENT_ID, config.OAUTH_GITHUB_CLIENT_SECRET));
  }
  if (config.OAUTH_MICROSOFT_CLIENT_ID && config.OAUTH_MICROSOFT_CLIENT_SECRET) {
    add(new MicrosoftProvider(config, config.OAUTH_MICROSOFT_CLIENT_ID, config.OAUTH_MICROSOFT_CLIENT_SECRET));
  }
  if (config.OAUTH_FACEBOOK_CLIENT_ID && config.OAUTH_FACEBOOK_CLIENT_SECRET) {
    add(new FacebookProvider(config, config.OAUTH_FACEBOOK_CLIENT_ID, config.OAUTH_FACEBOOK_CLIENT_SECRET));
  }
  if (config.OIDC_ISSUER && config.OIDC_CLIENT_ID && config.OIDC_CLIENT_SECRET) {
    add(new OidcProvider(config.OIDC_ISSUER, config.OIDC_CLIENT_ID, config.OIDC_CLIENT_SECRET));
  }
  return providers;
}
