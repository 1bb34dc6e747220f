import { defineSettings, type SettingsOf } from "../../src/plugin";
import type { Limit } from "../../src/rate-limit";
import { appPath, bool, limit } from "../../src/settings-fields";

export const passwordSettings = defineSettings({
  shape: {
    /** A new account signs in only once its email is confirmed with a code. */
    REQUIRE_EMAIL_VERIFICATION: bool.default(false),
    /** The reset link is APP_URL + this path + `?token=...`. */
    PASSWORD_RESET_PATH: appPath("/reset-password"),
  },
});

export const passwordLimits = {
  /** `POST /email/check` per client IP: the one route that tells whether an email is registered. */
  RATE_LIMIT_EMAIL_CHECK_IP: limit("10/60"),
};

export type PasswordSettings = SettingsOf<typeof passwordSettings>;

declare module "../../src/config" {
  interface PluginSettings extends PasswordSettings {}
}
declare module "../../src/rate-limit" {
  interface RateLimits extends Record<keyof typeof passwordLimits, Limit> {}
}
