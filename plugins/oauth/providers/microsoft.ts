import type { JWTPayload } from "jose";
import type { Config } from "../../../src/config";
import { IdTokenProvider, type IdTokenRules, type ProviderEndpoints } from "./provider";

const MICROSOFT_SHARED_TENANTS = new Set(["common", "organizations", "consumers"]);

export class MicrosoftProvider extends IdTokenProvider {
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
