import type { Config } from "../../../src/config";
import { canonicalEmail } from "../../../src/users";
import { bounded, fetchJson, httpsImage, idOf, oauthErrors, type OAuthProfile, OAuthProvider, type ProviderCredential, type ProviderEndpoints, type ProviderTokens, splitName } from "./provider";

export class FacebookProvider extends OAuthProvider {
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
