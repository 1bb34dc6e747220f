import { defineSettings, type SettingsOf } from "../../src/plugin";
import type { Limit } from "../../src/rate-limit";
import { limit, optionalString, urlOf } from "../../src/settings-fields";

/** The WebAuthn relying party; each part defaults from APP_URL. */
export const mfaSettings = defineSettings({
  shape: {
    WEBAUTHN_RP_ID: optionalString,
    WEBAUTHN_RP_NAME: optionalString,
    WEBAUTHN_ORIGIN: urlOf("https:", "http:"),
  },
  // WebAuthn binds passkeys to the RP ID, which must be the origin's host or a domain it lies under: any other would
  // start fine and fail every passkey registration and sign-in.
  check: (s, issues) => {
    const appUrl = (s as typeof s & { APP_URL?: string }).APP_URL;
    const originUrl = s.WEBAUTHN_ORIGIN ?? appUrl;
    if (!s.WEBAUTHN_RP_ID || !originUrl || !URL.canParse(originUrl)) return;
    const host = new URL(originUrl).hostname;
    if (host !== s.WEBAUTHN_RP_ID && !host.endsWith(`.${s.WEBAUTHN_RP_ID}`)) {
      issues.addIssue({
        code: "custom",
        path: ["WEBAUTHN_RP_ID"],
        message: `must be the host of ${s.WEBAUTHN_ORIGIN ? "WEBAUTHN_ORIGIN" : "APP_URL"} or a domain it lies under`,
      });
    }
  },
  derive: (s, core) => ({
    webauthn: {
      rpId: s.WEBAUTHN_RP_ID ?? new URL(core.APP_URL).hostname,
      rpName: s.WEBAUTHN_RP_NAME ?? new URL(core.APP_URL).hostname,
      origin: s.WEBAUTHN_ORIGIN ?? new URL(core.APP_URL).origin,
    },
  }),
});

export const mfaLimits = {
  /** Second-factor guesses (TOTP, recovery codes) per account, across all its mfaTokens and reauthentications. */
  RATE_LIMIT_MFA_USER: limit("10/900"),
};

export type MfaSettings = SettingsOf<typeof mfaSettings>;

declare module "../../src/config" {
  interface PluginSettings extends MfaSettings {}
}
declare module "../../src/rate-limit" {
  interface RateLimits extends Record<keyof typeof mfaLimits, Limit> {}
}
