import type { JWTPayload } from "jose";
import { fetchJson, IdTokenProvider, type IdTokenRules, oauthErrors, type OAuthProfile, type ProviderEndpoints, type ProviderTokens, stringField } from "./provider";

type Discovery = { issuer: string; authorization: string; token: string; jwksUrl: string; userinfo?: string };

export class OidcProvider extends IdTokenProvider {
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
