import { z } from "zod";

const optional = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

/** The hosted pages' settings, merged into the one check at start (src/config.ts). Branding is shared with the emails. */
export const hostedUiSettings = {
  /** Serve the sign-in, sign-up, reset and account pages under AUTH_BASE_PATH/ui/. */
  HOSTED_UI: z
    .union([z.boolean(), z.enum(["true", "false", "1", "0", ""])])
    .default(true)
    .transform((v) => v === true || v === "true" || v === "1" || v === ""),
  APP_NAME: z.string().trim().min(1).max(80).default("Auth"),
  APP_LOGO_URL: optional.refine((v) => v === undefined || (URL.canParse(v) && /^https?:$/.test(new URL(v).protocol)), "must be an http(s) URL"),
  /** A hex colour (#rgb or #rrggbb) for buttons and links. */
  BRAND_COLOR: optional.refine((v) => v === undefined || /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(v), "must be a hex colour such as #4f46e5"),
};
