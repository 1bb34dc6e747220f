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
