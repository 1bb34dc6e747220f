import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import type { AnyPlugin } from "./plugin";
import { PLUGINS } from "./plugins";
import type { RateLimits } from "./rate-limit";
import { bool, emailList, int, isUrl, limit, list, mailbox, optionalString, originList, urlOf } from "./settings-fields";

const HOST_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${HOST_LABEL}(\\.${HOST_LABEL})*$`);
/** An IP address, or a host name whose last label is not all digits (so `999.1.1.1` is no host name). */
const isHost = (v: string) => isIP(v) !== 0 || (HOST_NAME.test(v) && !/(^|\.)\d+$/.test(v));

/** The core's own settings; each plugin brings its own (plugins/<id>/settings.ts), merged into the one check. */
const coreSettingsShape = {
    PORT: int(3000, 65535),
    HOST: optionalString
      .refine((v) => v === undefined || isHost(v), "must be an IP address (e.g. 0.0.0.0, 127.0.0.1, ::) or a host name")
      .transform((v) => v ?? "0.0.0.0"),
    DATABASE_URL: urlOf("postgres:", "postgresql:"),
    DATA_DIR: z.string().default("./data"),
    REDIS_URL: urlOf("redis:", "rediss:"),
    KV_PREFIX: z.string().default(""),
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
    /** Rotate the EdDSA signing key once it is this many days old (the maintenance job, every instance); 0: by hand only. */
    JWT_KEY_ROTATION_DAYS: int(0, 3650),
    // A lifetime of 0 would make every token or session dead on arrival.
    ACCESS_TOKEN_TTL_S: int(900, Number.MAX_SAFE_INTEGER, 1),
    REFRESH_TOKEN_TTL_S: int(2592000, Number.MAX_SAFE_INTEGER, 1),
    REFRESH_REUSE_GRACE_S: int(10),
    SESSION_MAX_AGE_S: int(7776000, Number.MAX_SAFE_INTEGER, 1),
    SESSION_IDLE_TIMEOUT_S: int(2592000, Number.MAX_SAFE_INTEGER, 1),
    /** How recent a session's last proof of a factor must be for step-up routes (credentials, email, deletion). */
    REAUTH_MAX_AGE_S: int(300),
    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(1).max(128).default(8),
    PASSWORD_REQUIRE_COMPLEXITY: bool.default(false),
    PASSWORD_HASH_MEMORY_KIB: z.coerce.number().int().min(1024).default(19456),
    PASSWORD_HASH_TIME_COST: z.coerce.number().int().min(1).default(2),
    /** How many argon2 computations run at once; the rest wait their turn. Default: the CPUs this process may use. */
    PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(() => availableParallelism()),
    SMTP_URL: urlOf("smtp:", "smtps:"),
    MAIL_FROM: mailbox("Auth <no-reply@localhost>"),
    // Shown in every email (its heading and signature); a line of plain text, so no control characters.
    APP_NAME: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .refine((v) => !/\p{Cc}/u.test(v), "must be one line of text, at most 64 characters")
      .default("Auth"),
    TRUSTED_REDIRECT_ORIGINS: originList,
    CORS_ORIGINS: originList,
    ENCRYPTION_KEY: optionalString.refine(
      (v) => v === undefined || v.length >= 32,
      "must be at least 32 characters of random (e.g. the output of `openssl rand -base64 32`)",
    ),
    /** A key ring for data sealed at rest, comma-separated, the newest first: it seals, every key opens. */
    ENCRYPTION_KEYS: list,
    CAPTCHA_PROVIDER: z.enum(["turnstile", "hcaptcha", "recaptcha"]).optional(),
    CAPTCHA_SECRET: optionalString,
    CAPTCHA_VERIFY_URL: urlOf("https:", "http:"),
    ADMIN_EMAILS: emailList,
    RATE_LIMIT_LOGIN_IP: limit("20/60"),
    RATE_LIMIT_LOGIN_EMAIL: limit("5/60"),
    RATE_LIMIT_CODE_EMAIL: limit("3/600"),
    RATE_LIMIT_REFRESH_SESSION: limit("60/60"),
    RATE_LIMIT_SIGNUP_IP: limit("10/600"),
    RATE_LIMIT_MAIL_IP: limit("20/3600"),
    RATE_LIMIT_MAIL_RECIPIENT: limit("10/3600"),
    /** How long an impersonation token lives; it has no refresh token, so this is the whole impersonation. */
    IMPERSONATION_TTL_S: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(1).max(86_400).default(1800)),
    /** The hosted pages under AUTH_BASE_PATH/ui/, and the branding they share with the emails. */
    HOSTED_UI: z.preprocess((v) => (v === "" ? undefined : v), bool.default(true)),
    APP_LOGO_URL: urlOf("https:", "http:"),
    /** A hex colour (#rgb or #rrggbb) for buttons and links. */
    BRAND_COLOR: optionalString.refine((v) => v === undefined || /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(v), "must be a hex colour such as #4f46e5"),
    TRUST_PROXY: bool.default(false),
    BACKEND_TIMEOUT_MS: int(3000, 600_000, 100),
    /** Audit rows older than this many days are deleted by the maintenance job; 0 keeps them for ever. */
    AUDIT_RETENTION_DAYS: int(365),
    SHUTDOWN_TIMEOUT_MS: int(10000),
    METRICS: bool.default(false),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
    /** How mail leaves: `smtp` (SMTP_URL) or `console` (printed to the log, codes and links included). */
    MAIL_TRANSPORT: z.enum(["smtp", "console"], { message: "must be smtp or console" }).optional(),
    NODE_ENV: optionalString,
};

/** A random key of 32 characters (e.g. `openssl rand -base64 32`) carries well over 128 bits. */
const MIN_ENCRYPTION_KEY_LENGTH = 32;

const coreSettingsSchema = z.object(coreSettingsShape);
export type CoreSettings = z.output<typeof coreSettingsSchema> & { AUTH_PLUGINS: string[] };

function checkCoreSettings(s: CoreSettings, ctx: z.RefinementCtx) {
    if (s.MAIL_TRANSPORT === "smtp" && !s.SMTP_URL) ctx.addIssue({ code: "custom", path: ["SMTP_URL"], message: "is required with MAIL_TRANSPORT=smtp" });
    // The Docker image sets NODE_ENV=production: there, printing every code and link to the log must be a choice.
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
    if (s.ENCRYPTION_KEYS.length > 0 && s.ENCRYPTION_KEY) {
      ctx.addIssue({ code: "custom", path: ["ENCRYPTION_KEYS"], message: "replaces ENCRYPTION_KEY: set one of them (put the old key last in ENCRYPTION_KEYS)" });
    }
    if (s.ENCRYPTION_KEYS.some((key) => key.length < MIN_ENCRYPTION_KEY_LENGTH)) {
      ctx.addIssue({ code: "custom", path: ["ENCRYPTION_KEYS"], message: `must be comma-separated keys of ${MIN_ENCRYPTION_KEY_LENGTH} characters at least, the newest first` });
    }
    if (s.CAPTCHA_PROVIDER && !s.CAPTCHA_SECRET) {
      ctx.addIssue({ code: "custom", path: ["CAPTCHA_SECRET"], message: "is required when CAPTCHA_PROVIDER is set" });
    }
}

/** `AUTH_PLUGINS`: known plugin ids, each with the plugins it depends on. */
function pluginListField(plugins: readonly AnyPlugin[]) {
  const known = plugins.map((p) => p.id);
  return z.string().transform((v, ctx) => {
    const names = v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const n of names) {
      if (!known.includes(n)) {
        ctx.addIssue({ code: "custom", message: `unknown plugin "${n}" (known: ${known.join(", ")})` });
        return z.NEVER;
      }
    }
    for (const plugin of plugins.filter((p) => names.includes(p.id))) {
      const missing = (plugin.dependsOn ?? []).find((dep: string) => !names.includes(dep));
      if (missing) {
        ctx.addIssue({ code: "custom", message: `plugin "${plugin.id}" needs plugin "${missing}"` });
        return z.NEVER;
      }
    }
    return names;
  });
}

/** The one settings check: the core's variables and every plugin's (settings and rate limits), parsed together. */
export function settingsSchemaOf(plugins: readonly AnyPlugin[]) {
  const shape: z.ZodRawShape = { ...coreSettingsShape, AUTH_PLUGINS: pluginListField(plugins) };
  for (const plugin of plugins) Object.assign(shape, plugin.settings?.shape, plugin.limits);
  return z.object(shape).superRefine((s, ctx) => {
    checkCoreSettings(s as CoreSettings, ctx);
    for (const plugin of plugins) plugin.settings?.check?.(s, ctx);
  });
}

/**
 * The settings plugins add to the config, by declaration merging from each plugin's settings.ts
 * (`declare module "../../src/config" { interface PluginSettings extends OAuthSettings {} }`).
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging from each plugin's folder
export interface PluginSettings {}

/** A variable's name (upper case), as opposed to a value a plugin derives from its variables. */
type VariableName<K> = K extends Uppercase<K & string> ? K : never;

/** What `createAuthServer(options)` accepts: any setting, by its variable name, as a string or its typed value. */
export type AuthServerOptions = Partial<
  Record<keyof z.input<typeof coreSettingsSchema> | "AUTH_PLUGINS" | VariableName<keyof PluginSettings> | keyof RateLimits, string | number | boolean | string[]>
>;

export type Config = CoreSettings &
  PluginSettings &
  RateLimits & {
    issuer: string;
    audience: string;
    trustedRedirectOrigins: string[];
    corsOrigins: string[];
    plugins: Set<string>;
    /** PUBLIC_URL (or APP_URL) without a trailing slash. */
    publicUrl: string;
    /** How mail leaves: MAIL_TRANSPORT, else SMTP when SMTP_URL is set, else the log (never by default in production). */
    mailTransport: "smtp" | "console";
    /** The sealing key ring: ENCRYPTION_KEYS, or ENCRYPTION_KEY as a ring of one; empty: the database's own keys. */
    encryptionKeys: string[];
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
export function loadConfig(input: AuthServerOptions | Record<string, string | undefined>, plugins: readonly AnyPlugin[] = PLUGINS): Config {
  const schema = settingsSchemaOf(plugins);
  const picked: Record<string, unknown> = {};
  const normalised = normaliseInput(input as AuthServerOptions);
  for (const key of Object.keys(schema.shape)) if (key in normalised) picked[key] = normalised[key];
  picked.AUTH_PLUGINS ??= plugins
    .filter((p) => (typeof p.onByDefault === "function" ? p.onByDefault(normalised) : p.onByDefault !== false))
    .map((p) => p.id)
    .join(",");
  const result = schema.safeParse(picked);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? "settings");
    throw new ConfigError(variable, issue?.message ?? "invalid");
  }
  const s = result.data as CoreSettings;
  const appOrigin = new URL(s.APP_URL).origin;
  const publicUrl = (s.PUBLIC_URL ?? s.APP_URL).replace(/\/+$/, "");
  const derived = plugins.map((p) => p.settings?.derive?.(result.data, s));
  return Object.assign({}, s, ...derived, {
    publicUrl,
    mailTransport: s.MAIL_TRANSPORT ?? (s.SMTP_URL ? "smtp" : "console"),
    encryptionKeys: s.ENCRYPTION_KEYS.length > 0 ? s.ENCRYPTION_KEYS : s.ENCRYPTION_KEY ? [s.ENCRYPTION_KEY] : [],
    issuer: s.JWT_ISSUER ?? s.PUBLIC_URL ?? s.APP_URL,
    audience: s.JWT_AUDIENCE ?? s.APP_URL,
    trustedRedirectOrigins: (s.TRUSTED_REDIRECT_ORIGINS.length ? s.TRUSTED_REDIRECT_ORIGINS : [appOrigin]).map(
      (o) => new URL(o).origin,
    ),
    corsOrigins: (s.CORS_ORIGINS.length ? s.CORS_ORIGINS : [appOrigin]).map((o) => new URL(o).origin),
    plugins: new Set(s.AUTH_PLUGINS),
  });
}
