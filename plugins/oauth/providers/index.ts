import type { Config } from "../../../src/config";
import { FacebookProvider } from "./facebook";
import { GitHubProvider } from "./github";
import { GoogleProvider } from "./google";
import { MicrosoftProvider } from "./microsoft";
import { OidcProvider } from "./oidc";
import type { OAuthProvider } from "./provider";

export {
  loadArctic,
  OAuthProvider,
  oauthErrors,
  PROVIDER_IDS,
  type OAuthProfile,
  type ProviderCredential,
  type ProviderId,
  type ProviderTokens,
} from "./provider";

export function isOidcProvider(provider: OAuthProvider): provider is OidcProvider {
  return provider instanceof OidcProvider;
}

/** The providers switched on by configuration: each needs its client id and secret (and OIDC its issuer). */
export function createProviders(config: Config, now: () => Date): Map<string, OAuthProvider> {
  const providers = new Map<string, OAuthProvider>();
  const add = (provider: OAuthProvider) => {
    provider.now = now;
    providers.set(provider.id, provider);
  };
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
