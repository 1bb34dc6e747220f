import { z } from "zod";
import { EVENT_TYPES } from "../../src/events";
import { defineSettings, type SettingsOf } from "../../src/plugin";

const WHSEC = /^whsec_([A-Za-z0-9+/]+={0,2})$/;
const MIN_SECRET_BYTES = 24;

/** The key bytes of `whsec_<base64>`, or undefined when it is not that shape. */
export function secretKey(secret: string): Buffer | undefined {
  const match = WHSEC.exec(secret);
  if (!match?.[1] || match[1].length % 4 !== 0) return undefined;
  return Buffer.from(match[1], "base64");
}

const words = (separator: string | RegExp) =>
  z
    .string()
    .default("")
    .transform((v) =>
      v
        .split(separator)
        .map((s) => s.trim())
        .filter(Boolean),
    );

/** The plugin's settings, merged into the one check at start. No message ever repeats a secret. */
export const webhookSettings = defineSettings({
  shape: {
    WEBHOOK_URLS: words(",").refine(
      (urls) => urls.every((u) => URL.canParse(u) && ["http:", "https:"].includes(new URL(u).protocol)),
      "must be comma-separated http(s) URLs",
    ),
    /** Space-separated during a rotation: every attempt carries one signature per secret. */
    WEBHOOK_SECRET: words(/\s+/).refine(
      (secrets) => secrets.every((s) => (secretKey(s)?.length ?? 0) >= MIN_SECRET_BYTES),
      `must be whsec_ followed by the base64 of at least ${MIN_SECRET_BYTES} bytes (several separated by spaces)`,
    ),
    /** Empty: every type. */
    WEBHOOK_EVENTS: words(",").refine(
      (names) => names.every((n) => (EVENT_TYPES as readonly string[]).includes(n)),
      `must be comma-separated event types (known: ${EVENT_TYPES.join(", ")})`,
    ),
    WEBHOOK_MAX_ATTEMPTS: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(1).max(100).default(8)),
    /** The base of the retry schedule, in seconds; fractions let tests retry within a run. */
    WEBHOOK_BACKOFF_S: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().positive().max(86_400).default(5)),
  },
  /** URLs to send to and no secret to sign with is wrong together. */
  check(s, issues) {
    if (s.WEBHOOK_URLS.length > 0 && s.WEBHOOK_SECRET.length === 0) {
      issues.addIssue({ code: "custom", path: ["WEBHOOK_SECRET"], message: "is required when WEBHOOK_URLS is set" });
    }
  },
});

export type WebhookSettings = SettingsOf<typeof webhookSettings>;

declare module "../../src/config" {
  interface PluginSettings extends WebhookSettings {}
}
