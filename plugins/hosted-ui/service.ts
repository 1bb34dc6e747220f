import type { Cookie } from "elysia";
import type { Config } from "../../src/config";
import type { AuthContext } from "../../src/context";
import type { UserRow } from "../../src/db/schema";
import { AuthError } from "../../src/errors";
import type { RequestMeta } from "../../src/request";
import { clearSessionCookies, readCookie, sessionCookies, setSessionCookies } from "../../src/sessions/cookies";
import type { AuthInfo } from "../../src/sessions/service";
import type { FormErrors } from "./pages";

type CookieJar = Record<string, Cookie<unknown>>;

/** True when APP_URL is this server (its default): then the pages are the app, and the emailed links land here. */
export const appIsThisServer = (config: Config) => new URL(config.APP_URL).origin === new URL(config.publicUrl).origin;

/** Where the pages live, as the browser addresses them. */
export const uiBase = (config: Config) => `${config.AUTH_BASE_PATH}/ui`;

/**
 * Where a finished sign-in goes: `redirectTo` when it is an http(s) URL on a trusted origin, else the app (the
 * account page when the app is this server). Anything else (another origin, `javascript:`, `//host`) is ignored.
 */
export function afterSignIn(config: Config, redirectTo: string | undefined): string {
  if (redirectTo && /^https?:\/\//i.test(redirectTo) && !/[\\\s\u0000-\u001f]/.test(redirectTo) && URL.canParse(redirectTo)) {
    const url = new URL(redirectTo);
    if (!url.username && !url.password && config.trustedRedirectOrigins.includes(url.origin)) return url.toString();
  }
  return appIsThisServer(config) ? `${uiBase(config)}/account` : config.APP_URL;
}

export type PageSession = { auth: AuthInfo; user: UserRow };

/**
 * The signed-in user of a page request, from the session cookies: the access cookie, or, once it has expired, the
 * refresh cookie rotated here (the new cookies go out with the page). Null when neither holds a live session.
 */
export async function pageSession(ctx: AuthContext, request: Request, jar: CookieJar, meta: RequestMeta): Promise<PageSession | null> {
  const cookies = sessionCookies(ctx.config);
  const access = readCookie(request, cookies.access);
  const signedIn = async (token: string) => {
    const auth = await ctx.sessions.authenticate(`Bearer ${token}`);
    const user = await ctx.users.findById(auth.userId);
    return user ? { auth, user } : null;
  };
  if (access) {
    try {
      return await signedIn(access);
    } catch (error) {
      if (!(error instanceof AuthError) || error.status !== 401) throw error;
    }
  }
  const refresh = readCookie(request, cookies.refresh);
  if (!refresh) return null;
  try {
    const rotated = await ctx.sessions.refresh(refresh, meta);
    setSessionCookies(jar, ctx.config, rotated);
    return await signedIn(rotated.accessToken);
  } catch (error) {
    if (!(error instanceof AuthError) || error.status !== 401) throw error;
    clearSessionCookies(jar, ctx.config);
    return null;
  }
}

/** Which field an error code is about, so its message shows next to that field. */
const FIELD_OF_CODE: Record<string, string> = {
  EMAIL_TAKEN: "email",
  USERNAME_TAKEN: "username",
  WEAK_PASSWORD: "password",
  PASSWORD_MISMATCH: "confirmPassword",
  INVALID_CODE: "code",
  INVALID_EMAIL: "email",
};

/** An error of the API, as a form shows it: by its message, next to its field when it names one. */
export function formErrorsOf(error: AuthError, renamed: Record<string, string> = {}): FormErrors {
  const fields: Record<string, string> = {};
  for (const detail of error.details ?? []) {
    const name = renamed[detail.path] ?? detail.path;
    if (name) fields[name] ??= detail.message;
  }
  const codeField = FIELD_OF_CODE[error.code];
  if (codeField && Object.keys(fields).length === 0) {
    fields[renamed[codeField] ?? codeField] = error.message;
    return { fields };
  }
  return { form: Object.keys(fields).length > 0 ? undefined : error.message, fields };
}

/** A required text field of a form, trimmed; absent fields add a "required" error. */
export function required(form: Record<string, string | undefined>, name: string, errors: FormErrors, message = "This field is required"): string {
  const value = form[name]?.trim() ?? "";
  if (!value) errors.fields[name] = message;
  return value;
}

/**
 * The pages' Content-Security-Policy: nothing but this server's own stylesheet and images (and the configured
 * logo), no script, no frame, and forms that post only here (a finished sign-in's redirect may go to a trusted origin).
 */
export function contentSecurityPolicy(config: Config): string {
  const logo = config.APP_LOGO_URL ? ` ${new URL(config.APP_LOGO_URL).origin}` : "";
  const formTargets = new Set(["'self'", ...config.trustedRedirectOrigins, new URL(config.APP_URL).origin]);
  return [
    "default-src 'none'",
    "style-src 'self'",
    `img-src 'self' data:${logo}`,
    `form-action ${[...formTargets].join(" ")}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
}
