import { z } from "zod";
import { defineSettings, type SettingsOf } from "../../src/plugin";
import { optionalString, optionalUrl, urlOf } from "../../src/settings-fields";

/** Sign-in providers that need an id and a secret: setting one without the other is a mistake, not "off". */
const PROVIDER_CREDENTIALS = [
  ["OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"],
  ["OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET"],
  ["OAUTH_MICROSOFT_CLIENT_ID", "OAUTH_MICROSOFT_CLIENT_SECRET"],
  ["OAUTH_FACEBOOK_CLIENT_ID", "OAUTH_FACEBOOK_CLIENT_SECRET"],
] as const;
const OIDC_SETTINGS = ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] as const;

/** A provider is on when its client id and secret are set; every endpoint can be pointed elsewhere (tests do). */
export const oauthSettings = defineSettings({
  shape: {
    OAUTH_GOOGLE_CLIENT_ID: optionalString,
    OAUTH_GOOGLE_CLIENT_SECRET: optionalString,
    OAUTH_GITHUB_CLIENT_ID: optionalString,
    OAUTH_GITHUB_CLIENT_SECRET: optionalString,
    OAUTH_MICROSOFT_CLIENT_ID: optionalString,
    OAUTH_MICROSOFT_CLIENT_SECRET: optionalString,
    OAUTH_MICROSOFT_TENANT: z.string().default("common"),
    OAUTH_FACEBOOK_CLIENT_ID: optionalString,
    OAUTH_FACEBOOK_CLIENT_SECRET: optionalString,
    OIDC_ISSUER: urlOf("https:", "http:"),
    OIDC_CLIENT_ID: optionalString,
    OIDC_CLIENT_SECRET: optionalString,
    OAUTH_GOOGLE_AUTHORIZATION_URL: optionalUrl,
    OAUTH_GOOGLE_TOKEN_URL: optionalUrl,
    OAUTH_GOOGLE_JWKS_URL: optionalUrl,
    OAUTH_GOOGLE_ISSUER: optionalString,
    OAUTH_GITHUB_AUTHORIZATION_URL: optionalUrl,
    OAUTH_GITHUB_TOKEN_URL: optionalUrl,
    OAUTH_GITHUB_API_URL: optionalUrl,
    OAUTH_MICROSOFT_AUTHORIZATION_URL: optionalUrl,
    OAUTH_MICROSOFT_TOKEN_URL: optionalUrl,
    OAUTH_MICROSOFT_JWKS_URL: optionalUrl,
    OAUTH_MICROSOFT_ISSUER: optionalString,
    OAUTH_FACEBOOK_AUTHORIZATION_URL: optionalUrl,
    OAUTH_FACEBOOK_TOKEN_URL: optionalUrl,
    OAUTH_FACEBOOK_GRAPH_URL: optionalUrl,
  },
  check(s, issues) {
    for (const pair of [...PROVIDER_CREDENTIALS, OIDC_SETTINGS]) {
      const set = pair.filter((name) => s[name] !== undefined);
      const missing = pair.find((name) => s[name] === undefined);
      if (set.length > 0 && missing) issues.addIssue({ code: "custom", path: [missing], message: `is required with ${set.join(" and ")}` });
    }
  },
});

export type OAuthSettings = SettingsOf<typeof oauthSettings>;

declare module "../../src/config" {
  interface PluginSettings extends OAuthSettings {}
}
