import type { Config } from "../../../src/config";
import { canonicalEmail } from "../../../src/users";
import { bounded, httpsImage, idOf, oauthErrors, type OAuthProfile, OAuthProvider, PROVIDER_TIMEOUT_MS, type ProviderCredential, type ProviderEndpoints, type ProviderTokens, splitName, USER_AGENT } from "./provider";

export class GitHubProvider extends OAuthProvider {
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
