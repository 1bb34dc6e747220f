import { defineSettings, type SettingsOf } from "../../src/plugin";
import type { Limit } from "../../src/rate-limit";
import { int, limit } from "../../src/settings-fields";

export const anonymousSettings = defineSettings({
  shape: {
    /** Guests with no sign-in or refresh for this many days are deleted by the maintenance sweep. */
    ANONYMOUS_TTL_DAYS: int(30),
  },
});

export const anonymousLimits = {
  /** Guest sign-ups per client IP. */
  RATE_LIMIT_ANONYMOUS_IP: limit("10/60"),
};

export type AnonymousSettings = SettingsOf<typeof anonymousSettings>;

declare module "../../src/config" {
  interface PluginSettings extends AnonymousSettings {}
}
declare module "../../src/rate-limit" {
  interface RateLimits extends Record<keyof typeof anonymousLimits, Limit> {}
}
