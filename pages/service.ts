import type { Cookie } from "elysia";
import type { Config } from "../src/config";
import type { AuthContext } from "../src/context";
import type { UserRow } from "../src/db/schema";
import { AuthError } from "../src/errors";
import type { RequestMeta } from "../src/request";
import { clearSessionCookies, readCookie, sessionCookies, setSessionCookies } from "../src/sessions/cookies";
import type { AuthInfo } from "../src/sessions/service";
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
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
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

/**
 * An error of the API, as a form shows it: by its message, next to its field when it names one. `renamed` maps a
 * detail path or an error code to the form's own field name.
 */
export function formErrorsOf(error: AuthError, renamed: Record<string, string> = {}): FormErrors {
  const fields: Record<string, string> = {};
  for (const detail of error.details ?? []) {
    const name = renamed[detail.path] ?? detail.path;
    if (name) fields[name] ??= detail.message;
  }
  const codeField = renamed[error.code] ?? FIELD_OF_CODE[error.code];
  if (codeField && Object.keys(fields).length === 0) {
    fields[renamed[codeField] ?? codeField] = error.message;
    return { fields };
  }
  return { form: Object.keys(fields).length > 0 ? undefined : error.message, fields };
}

/**
 * The pages' Content-Security-Policy: nothing but this server's own stylesheet and images (and the configured
 * logo), no frame, and forms that post only here (a finished sign-in's redirect may go to a trusted origin). No
 * script, but on the pages that load the passkey script: then that file of this server, fetching this server only.
 */
export function contentSecurityPolicy(config: Config, opts: { script: boolean }): string {
  const logo = config.APP_LOGO_URL ? ` ${new URL(config.APP_LOGO_URL).origin}` : "";
  const formTargets = new Set(["'self'", ...config.trustedRedirectOrigins, new URL(config.APP_URL).origin]);
  return [
    "default-src 'none'",
    ...(opts.script ? ["script-src 'self'", "connect-src 'self'"] : []),
    "style-src 'self'",
    `img-src 'self' data:${logo}`,
    `form-action ${[...formTargets].join(" ")}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
}

/** A Set-Cookie line (as the oauth plugin makes its flow cookie) put in Elysia's cookie jar, so it goes out with the jar's. */
export function setCookieLine(jar: CookieJar, line: string): void {
  const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
  const eq = pair.indexOf("=");
  const attribute = (name: string) => attributes.find((a) => a.toLowerCase().startsWith(`${name}=`))?.slice(name.length + 1);
  const flag = (name: string) => attributes.some((a) => a.toLowerCase() === name);
  const sameSite = attribute("samesite")?.toLowerCase();
  jar[pair.slice(0, eq)]?.set({
    value: pair.slice(eq + 1),
    path: attribute("path"),
    maxAge: attribute("max-age") === undefined ? undefined : Number(attribute("max-age")),
    httpOnly: flag("httponly"),
    secure: flag("secure"),
    sameSite: sameSite === "lax" || sameSite === "strict" || sameSite === "none" ? sameSite : undefined,
  });
}
