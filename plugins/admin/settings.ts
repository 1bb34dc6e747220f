import { z } from "zod";

/** The admin plugin's settings, merged into the one check at start (src/config.ts). */
export const adminSettings = {
  /** How long an impersonation token lives; it has no refresh token, so this is the whole impersonation. */
  IMPERSONATION_TTL_S: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(1).max(86_400).default(1800)),
};
