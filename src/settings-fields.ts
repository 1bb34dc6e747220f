import { z } from "zod";

/**
 * The zod fields settings are made of, shared by the core's schema (src/config.ts) and every plugin's settings.ts.
 * Each takes the raw environment string (or a typed value handed in code) and never repeats a value in its message:
 * a setting may hold a secret.
 */

export const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", ""])], { error: "must be true or false" })
  .transform((v) => v === true || v === "true" || v === "1");

/**
 * A whole number from `min` to `max`; an empty variable (`PORT=`) means the default, as if it were unset. Every
 * refusal says the range (`PORT=abc` does not say NaN).
 */
export const int = (def: number, max = Number.MAX_SAFE_INTEGER, min = 0) => {
  const error = max === Number.MAX_SAFE_INTEGER ? `must be a whole number, ${min} or more` : `must be a whole number from ${min} to ${max}`;
  return z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(def));
};

export type Limit = { count: number; windowS: number };

/** `COUNT/SECONDS`, e.g. `20/60`. */
export const limit = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx): Limit => {
      const m = /^(\d+)\/(\d+)$/.exec(v.trim());
      // A count of 0 would refuse every attempt for ever: a lock-out, not a limit.
      if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) {
        ctx.addIssue({ code: "custom", message: "must be COUNT/SECONDS with both at least 1, e.g. 20/60" });
        return z.NEVER;
      }
      return { count: Number(m[1]), windowS: Number(m[2]) };
    });

export const list = z
  .string()
  .default("")
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

/** An address as the mail headers hold it (`local@domain`, `localhost` allowed), without a display name. */
const MAIL_ADDRESS = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+$/;

/** Comma-separated email addresses. */
export const emailList = list.refine((emails) => emails.every((e) => MAIL_ADDRESS.test(e)), "must be comma-separated email addresses");

/** `Name <address>` or a bare address. */
export const mailbox = (def: string) =>
  z
    .string()
    .trim()
    .default(def)
    .refine((v) => {
      const m = /^(?:[^<>\r\n]*<([^<>]+)>|([^<>\s]+))$/.exec(v);
      return m !== null && MAIL_ADDRESS.test(m[1] ?? m[2] ?? "");
    }, "must be an address, or Name <address>, e.g. Auth <no-reply@example.com>");

export const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

export const optionalUrl = optionalString.pipe(z.url().optional());

export const isUrl = (value: string, protocols: string[]) => URL.canParse(value) && protocols.includes(new URL(value).protocol);
/** An optional URL with one of these schemes. The message never repeats the value: it may hold a password. */
export const urlOf = (...protocols: string[]) =>
  optionalString.refine((v) => v === undefined || isUrl(v, protocols), `must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
/** Comma-separated http(s) origins. */
export const originList = list.refine((origins) => origins.every((o) => isUrl(o, ["http:", "https:"])), "must be comma-separated http(s) origins");
/** A path under APP_URL that links point to. */
export const appPath = (def: string) => z.string().default(def).refine((v) => v.startsWith("/"), "must start with /");
