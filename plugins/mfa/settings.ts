import { defineSettings, type SettingsOf } from "../../src/plugin";
import { optionalString, urlOf } from "../../src/settings-fields";

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

export type MfaSettings = SettingsOf<typeof mfaSettings>;

declare module "../../src/config" {
  interface PluginSettings extends MfaSettings {}
}
