import type { JWTPayload } from "jose";
import type { Config } from "../../../src/config";
import { IdTokenProvider, type IdTokenRules, type ProviderEndpoints } from "./provider";

export class GoogleProvider extends IdTokenProvider {
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
