import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { adminSettings } from "../plugins/admin/settings";

export const ALL_PLUGINS = ["password", "magic-code", "anonymous", "oauth", "mfa", "teams", "invitations", "admin"] as const;
export type PluginName = (typeof ALL_PLUGINS)[number];

const bool = z
  .union([z.boolean(), z.enum(["true", "false", "1", "0", ""])], { error: "must be true or false" })
  .transform((v) => v === true || v === "true" || v === "1");

/** A whole number; an empty variable (`PORT=`) means the default, as if it were unset. */
const int = (def: number, max = Number.MAX_SAFE_INTEGER, min = 0) => {
  const error = max === Number.MAX_SAFE_INTEGER ? `must be a whole number, ${min} or more` : `must be a whole number from ${min} to ${max}`;
  return z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(def));
};

/** An IP address, or a host name whose last label is not all digits (so `999.1.1.1` is no host name). */
const isHost = (v: string) =>
  isIP(v) !== 0 || (/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v) && !/(^|\.)\d+$/.test(v));

/** `COUNT/SECONDS`, e.g. `20/60`. */
const limit = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const m = /^(\d+)\/(\d+)$/.exec(v.trim());
      if (!m || Number(m[2]) === 0) {
        ctx.addIssue({ code: "custom", message: "must be COUNT/SECONDS, e.g. 20/60" });
        return z.NEVER;
      }
      return { count: Number(m[1]), windowS: Number(m[2]) };
    });

const list = z
  .string()
  .default("")
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));

const optionalUrl = optionalString.pipe(z.url().optional());

const isUrl = (value: string, protocols: string[]) => URL.canParse(value) && protocols.includes(new URL(value).protocol);
/** An optional URL with one of these schemes. The message never repeats the value: it may hold a password. */
const urlOf = (...protocols: string[]) =>
  optionalString.refine((v) => v === undefined || isUrl(v, protocols), `must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
/** Comma-separated http(s) origins. */
const originList = list.refine((origins) => origins.every((o) => isUrl(o, ["http:", "https:"])), "must be comma-separated http(s) origins");
/** A path under APP_URL that links point to. */
const appPath = (def: string) => z.string().default(def).refine((v) => v.startsWith("/"), "must start with /");
/** Sign-in providers that need an id and a secret: setting one without the other is a mistake, not "off". */
const PROVIDER_CREDENTIALS = [
  ["OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"],
  ["OAUTH_GITHUB_CLIENT_ID", "OAUTH_GITHUB_CLIENT_SECRET"],
  ["OAUTH_MICROSOFT_CLIENT_ID", "OAUTH_MICROSOFT_CLIENT_SECRET"],
  ["OAUTH_FACEBOOK_CLIENT_ID", "OAUTH_FACEBOOK_CLIENT_SECRET"],
] as const;
const OIDC_SETTINGS = ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] as const;

export const settingsSchema = z
  .object({
    PORT: int(3000, 65535),
    HOST: optionalString
      .refine((v) => v === undefined || isHost(v), "must be an IP address (e.g. 0.0.0.0, 127.0.0.1, ::) or a host name")
      .transform((v) => v ?? "0.0.0.0"),
    DATABASE_URL: urlOf("postgres:", "postgresql:"),
    DATA_DIR: z.string().default("./data"),
    REDIS_URL: urlOf("redis:", "rediss:"),
    KV_PREFIX: z.string().default(""),
    AUTH_PLUGINS: z
      .string()
      .default(ALL_PLUGINS.join(","))
      .transform((v, ctx) => {
        const names = v
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        for (const n of names) {
          if (!(ALL_PLUGINS as readonly string[]).includes(n)) {
            ctx.addIssue({ code: "custom", message: `unknown plugin "${n}" (known: ${ALL_PLUGINS.join(", ")})` });
            return z.NEVER;
          }
        }
        return names as PluginName[];
      }),
    AUTH_BASE_PATH: z
      .string()
      .default("/auth")
      .refine((v) => /^\/[A-Za-z0-9/_-]*$/.test(v) && !v.endsWith("/"), "must start with / and not end with /"),
    APP_URL: z
      .string()
      .default("http://localhost:3000")
      .refine((v) => isUrl(v, ["http:", "https:"]), "must be an http(s) URL with its scheme, e.g. https://app.example.com"),
    /** Where browsers and providers reach this server (OAuth callbacks, hosted pages, cookies); APP_URL when unset. */
    PUBLIC_URL: urlOf("https:", "http:"),
    JWT_ALG: z.enum(["EdDSA", "HS256"]).default("EdDSA"),
    JWT_SECRET: optionalString,
    JWT_ISSUER: optionalString,
    JWT_AUDIENCE: optionalString,
    ACCESS_TOKEN_TTL_S: int(900),
    REFRESH_TOKEN_TTL_S: int(2592000),
    REFRESH_REUSE_GRACE_S: int(10),
    SESSION_MAX_AGE_S: int(7776000),
    SESSION_IDLE_TIMEOUT_S: int(2592000),
    REQUIRE_EMAIL_VERIFICATION: bool.default(false),
    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(1).max(128).default(8),
    PASSWORD_REQUIRE_COMPLEXITY: bool.default(false),
    PASSWORD_HASH_MEMORY_KIB: z.coerce.number().int().min(1024).default(19456),
    PASSWORD_HASH_TIME_COST: z.coerce.number().int().min(1).default(2),
    /** How many argon2 computations run at once; the rest wait their turn. Default: the CPUs this process may use. */
    PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(() => availableParallelism()),
    PASSWORD_RESET_PATH: appPath("/reset-password"),
    INVITATION_PATH: appPath("/accept-invitation"),
    SMTP_URL: urlOf("smtp:", "smtps:"),
    MAIL_FROM: z.string().default("Auth <no-reply@localhost>"),
    TRUSTED_REDIRECT_ORIGINS: originList,
    CORS_ORIGINS: originList,
    OAUTH_GOOGLE_CLIENT_ID: optionalString,
    OAUTH_GOOGLE_CLIENT_SECRET: optionalString,
    OAUTH_GITHUB_CLIENT_ID: optionalString,
    OAUTH_GITHUB_CLIENT_SECRET: optionalString,
    OAUTH_MICROSOFT_CLIENT_ID: optionalString,
    OAUTH_MICROSOFT_CLIENT_SECRET: optionalString,
    OAUTH_MICROSOFT_TENANT: z.string().default("common"),
    OAUTH_FACEBOOK_CLIENT_ID: optionalString,
    OAUTH_FACEBOOK_CLIENT_SECRET: optionalString,
    OIDC_ISSUER: urlOf("https:", "http:"),
    OIDC_CLIENT_ID: optionalString,
    OIDC_CLIENT_SECRET: optionalString,
    OAUTH_GOOGLE_AUTHORIZATION_URL: optionalUrl,
    OAUTH_GOOGLE_TOKEN_URL: optionalUrl,
    OAUTH_GOOGLE_JWKS_URL: optionalUrl,
    OAUTH_GOOGLE_ISSUER: optionalString,
    OAUTH_GITHUB_AUTHORIZATION_URL: optionalUrl,
    OAUTH_GITHUB_TOKEN_URL: optionalUrl,
    OAUTH_GITHUB_API_URL: optionalUrl,
    OAUTH_MICROSOFT_AUTHORIZATION_URL: optionalUrl,
    OAUTH_MICROSOFT_TOKEN_URL: optionalUrl,
    OAUTH_MICROSOFT_JWKS_URL: optionalUrl,
    OAUTH_MICROSOFT_ISSUER: optionalString,
    OAUTH_FACEBOOK_AUTHORIZATION_URL: optionalUrl,
    OAUTH_FACEBOOK_TOKEN_URL: optionalUrl,
    OAUTH_FACEBOOK_GRAPH_URL: optionalUrl,
    WEBAUTHN_RP_ID: optionalString,
    WEBAUTHN_RP_NAME: optionalString,
    WEBAUTHN_ORIGIN: urlOf("https:", "http:"),
    ENCRYPTION_KEY: optionalString.refine(
      (v) => v === undefined || v.length >= 32,
      "must be at least 32 characters of random (e.g. the output of `openssl rand -base64 32`)",
    ),
    CAPTCHA_PROVIDER: z.enum(["turnstile", "hcaptcha", "recaptcha"]).optional(),
    CAPTCHA_SECRET: optionalString,
    CAPTCHA_VERIFY_URL: urlOf("https:", "http:"),
    DEMO_MODE: bool.default(false),
    ADMIN_EMAILS: list,
    ANONYMOUS_TTL_DAYS: int(30),
    RATE_LIMIT_LOGIN_IP: limit("20/60"),
    RATE_LIMIT_LOGIN_EMAIL: limit("5/60"),
    RATE_LIMIT_CODE_EMAIL: limit("3/600"),
    RATE_LIMIT_EMAIL_CHECK_IP: limit("10/60"),
    RATE_LIMIT_REFRESH_SESSION: limit("60/60"),
    RATE_LIMIT_ANONYMOUS_IP: limit("10/60"),
    RATE_LIMIT_SIGNUP_IP: limit("10/600"),
    RATE_LIMIT_MAIL_IP: limit("20/3600"),
    RATE_LIMIT_MAIL_RECIPIENT: limit("10/3600"),
    TRUST_PROXY: bool.default(false),
    BACKEND_TIMEOUT_MS: int(3000, 600_000, 100),
    AUDIT_RETENTION_DAYS: int(365),
    SHUTDOWN_TIMEOUT_MS: int(10000),
    METRICS: bool.default(false),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
    MAIL_TRANSPORT: z.enum(["smtp", "console"], { message: "must be smtp or console" }).optional(),
    NODE_ENV: optionalString,
    ...adminSettings,
  })
  .superRefine((s, ctx) => {
    if (s.MAIL_TRANSPORT === "smtp" && !s.SMTP_URL) ctx.addIssue({ code: "custom", path: ["SMTP_URL"], message: "is required with MAIL_TRANSPORT=smtp" });
    if (!s.MAIL_TRANSPORT && !s.SMTP_URL && s.NODE_ENV === "production") {
      ctx.addIssue({
        code: "custom",
        path: ["MAIL_TRANSPORT"],
        message: "is required with NODE_ENV=production and no SMTP_URL: set SMTP_URL, or MAIL_TRANSPORT=console to print mails (codes and links included) to the log",
      });
    }
    if (s.JWT_ALG === "HS256" && (!s.JWT_SECRET || s.JWT_SECRET.length < 32)) {
      ctx.addIssue({ code: "custom", path: ["JWT_SECRET"], message: "is required with JWT_ALG=HS256 (32 characters at least)" });
    }
    if (s.CAPTCHA_PROVIDER && !s.CAPTCHA_SECRET) {
      ctx.addIssue({ code: "custom", path: ["CAPTCHA_SECRET"], message: "is required when CAPTCHA_PROVIDER is set" });
    }
    for (const pair of [...PROVIDER_CREDENTIALS, OIDC_SETTINGS]) {
      const set = pair.filter((name) => s[name] !== undefined);
      const missing = pair.find((name) => s[name] === undefined);
      if (set.length > 0 && missing) ctx.addIssue({ code: "custom", path: [missing], message: `is required with ${set.join(" and ")}` });
    }
  });

export type Settings = z.output<typeof settingsSchema>;
/** What `createAuthServer(options)` accepts: any setting, by its variable name, as a string or its typed value. */
export type AuthServerOptions = Partial<Record<keyof z.input<typeof settingsSchema>, string | number | boolean | string[]>>;

export type Config = Settings & {
  issuer: string;
  audience: string;
  /** PUBLIC_URL (or APP_URL) without a trailing slash. */
  publicUrl: string;
  trustedRedirectOrigins: string[];
  corsOrigins: string[];
  plugins: Set<PluginName>;
  webauthn: { rpId: string; rpName: string; origin: string };
  /** How mail leaves: SMTP when SMTP_URL is set (or asked for), else printed to the log (never by default in production). */
  mailTransport: "smtp" | "console";
};

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`Invalid setting ${variable}: ${detail}`);
  }
}

function normaliseInput(input: AuthServerOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? value.join(",") : value;
  }
  return out;
}

/** Parses settings from the environment or from options; throws ConfigError naming the first bad variable. */
export function loadConfig(input: AuthServerOptions | Record<string, string | undefined>): Config {
  const known = Object.keys(settingsSchema.shape);
  const picked: Record<string, unknown> = {};
  const normalised = normaliseInput(input as AuthServerOptions);
  for (const key of known) if (key in normalised) picked[key] = normalised[key];
  const result = settingsSchema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? "settings");
    throw new ConfigError(variable, issue?.message ?? "invalid");
  }
  const s = result.data;
  const appOrigin = new URL(s.APP_URL).origin;
  const plugins = new Set(s.AUTH_PLUGINS);
  const publicUrl = (s.PUBLIC_URL ?? s.APP_URL).replace(/\/+$/, "");
  return {
    ...s,
    mailTransport: s.MAIL_TRANSPORT ?? (s.SMTP_URL ? "smtp" : "console"),
    publicUrl,
    issuer: s.JWT_ISSUER ?? s.PUBLIC_URL ?? s.APP_URL,
    audience: s.JWT_AUDIENCE ?? s.APP_URL,
    trustedRedirectOrigins: (s.TRUSTED_REDIRECT_ORIGINS.length ? s.TRUSTED_REDIRECT_ORIGINS : [appOrigin]).map(
      (o) => new URL(o).origin,
    ),
    corsOrigins: (s.CORS_ORIGINS.length ? s.CORS_ORIGINS : [appOrigin]).map((o) => new URL(o).origin),
    plugins,
    webauthn: {
      rpId: s.WEBAUTHN_RP_ID ?? new URL(s.APP_URL).hostname,
      rpName: s.WEBAUTHN_RP_NAME ?? new URL(s.APP_URL).hostname,
      origin: s.WEBAUTHN_ORIGIN ?? appOrigin,
    },
  };
}
