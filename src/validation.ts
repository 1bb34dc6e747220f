import { z } from "zod";

/** A boolean from JSON or from a form field ("true"/"false"). */
export const formBoolean = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);

/** A string field that must be present and non-empty, bounded so no one can make us hash megabytes. */
export const requiredString = (max = 1024) => z.string().min(1).max(max);

export const emailField = z.string().min(3).max(320);
export const passwordField = z.string().min(1).max(1024);
/** A password being chosen: any string (the 64 KiB body bounds it); the policy judges it, `400 WEAK_PASSWORD`. */
export const newPasswordField = z.string();
/** Optional, and may be empty: an empty or missing token is the captcha's to refuse (`400 CAPTCHA_FAILED`) when it is on. */
export const captchaField = z.string().max(4096).optional();
export const nameField = z.string().trim().max(100);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a well-formed id; anything else cannot name a row, and must not reach Postgres (which would reject the cast). */
export const isUuid = (value: string) => UUID.test(value);
