import { type Cookie, Elysia } from "elysia";
import type { Config } from "../config";
import { AuthError, coreError, errorResponse } from "../errors";
import type { TokenResponse } from "./service";

/**
 * Browser sessions: the tokens of a TokenResponse travel as HttpOnly cookies instead of in the body, for a client
 * that asks (`X-Auth-Cookies: 1`), so no script on the page can read them. Because a browser attaches cookies to
 * requests other sites make, every cookie-authenticated request that can change something must prove where it
 * comes from (see `assertTrustedOrigin`).
 */

/** What the OpenAPI spec says about browser sessions. */
export const BROWSER_SESSIONS_DOC =
  "**Browser sessions (cookies).** A request to any route that answers a `TokenResponse` with the header `X-Auth-Cookies: 1` gets its tokens as cookies " +
  "instead of in the body: `auth_at` (access token) and `auth_rt` (refresh token), `HttpOnly; SameSite=Lax; Path=/`, no `Domain`, and `Secure` with " +
  "the `__Host-` prefix on the names unless PUBLIC_URL is http://localhost, http://127.0.0.1 or http://[::1]. The body is the `TokenResponse` without " +
  "`accessToken` and `refreshToken`; an `MfaChallenge` sets no cookie. `POST /auth/refresh` with no body rotates both cookies on the same chain. Every " +
  "authenticated route takes the `auth_at` cookie; an `Authorization` header, when sent, alone counts. A request authenticated by a cookie whose method is " +
  "not GET, HEAD or OPTIONS must have an `Origin` equal to PUBLIC_URL's origin or one of CORS_ORIGINS, or no `Origin` and `Sec-Fetch-Site: same-origin`; " +
  "anything else (`Origin: null` included) is `403 CSRF_REJECTED` and changes nothing. A request asking for cookies without an Authorization header " +
  "(a sign-in) follows the same rule when it carries `Origin` or `Sec-Fetch-Site`, as every browser's does; one with neither is not a browser's and is served. " +
  "`POST /auth/logout` and `DELETE /auth/me` expire both cookies.";

/** The header a browser app sends to get (and keep) its session in cookies. */
export const COOKIE_MODE_HEADER = "x-auth-cookies";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Only these hosts are served over plain http in development; browsers drop `Secure` cookies elsewhere on http. */
const LOCAL_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

export type SessionCookies = {
  /** Names of the access and refresh cookies: `__Host-` prefixed outside local development. */
  access: string;
  refresh: string;
  secure: boolean;
  /** The origins a cookie-authenticated request may come from: PUBLIC_URL's and CORS_ORIGINS. */
  trustedOrigins: ReadonlySet<string>;
};

const settingsByConfig = new WeakMap<Config, SessionCookies>();

/** The cookie settings of a server, from PUBLIC_URL and CORS_ORIGINS; computed once per config. */
export function sessionCookies(config: Config): SessionCookies {
  let settings = settingsByConfig.get(config);
  if (!settings) {
    const publicOrigin = new URL(config.publicUrl).origin;
    const secure = !LOCAL_ORIGIN.test(publicOrigin);
    // `__Host-` makes the browser refuse the cookie unless it is Secure, has Path=/ and no Domain: a sibling
    // subdomain cannot plant one (cookie tossing), and a plain-named cookie it plants is never read.
    const prefix = secure ? "__Host-" : "";
    settings = {
      access: `${prefix}auth_at`,
      refresh: `${prefix}auth_rt`,
      secure,
      trustedOrigins: new Set([publicOrigin, ...config.corsOrigins.map((o) => new URL(o).origin)]),
    };
    settingsByConfig.set(config, settings);
  }
  return settings;
}

/** The value of one cookie of a request, or undefined. The first of several with that name wins, as browsers send the most specific first. */
export function readCookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === "" ? undefined : value;
  }
  return undefined;
}

/**
 * The credential a request presents: its Authorization header when it sends one (then it alone counts, so a bad
 * header is refused whatever the cookie), else the access cookie, presented as the Bearer header it stands for.
 */
export function presentedCredential(request: Request, cookies: SessionCookies): { authorization: string; viaCookie: boolean } | undefined {
  const authorization = request.headers.get("authorization");
  if (authorization !== null) return { authorization, viaCookie: false };
  const token = readCookie(request, cookies.access);
  return token ? { authorization: `Bearer ${token}`, viaCookie: true } : undefined;
}

export const isSafeMethod = (request: Request) => SAFE_METHODS.has(request.method);

export const csrfRejected = () =>
  coreError("CSRF_REJECTED");

/**
 * The CSRF rule of a request that a cookie authenticates (or that would set session cookies) and may change
 * something: its `Origin` must be trusted, or, when a browser sends no Origin, `Sec-Fetch-Site` must say the page
 * is this server's own. `Origin: null` (a sandboxed frame, a redirect across sites) is refused like any stranger.
 * A request with neither header is refused: every current browser sends one of them.
 */
export function assertTrustedOrigin(request: Request, cookies: SessionCookies): void {
  if (isSafeMethod(request)) return;
  const origin = request.headers.get("origin");
  if (origin !== null) {
    if (!cookies.trustedOrigins.has(origin)) throw csrfRejected();
    return;
  }
  if (request.headers.get("sec-fetch-site") !== "same-origin") throw csrfRejected();
}

/**
 * The login-CSRF rule of a request that asks for session cookies without being authenticated by one: a browser
 * page may only ask from a trusted origin. A browser always says where a POST comes from (`Origin`, or
 * `Sec-Fetch-Site`), and another page cannot add the asking header without a CORS preflight; a request with neither
 * header is not a browser's (a server, a script, a test client), and nobody's browser can be signed in by it.
 */
function assertTrustedCookieSignIn(request: Request, cookies: SessionCookies): void {
  if (request.headers.get("origin") === null && request.headers.get("sec-fetch-site") === null) return;
  assertTrustedOrigin(request, cookies);
}

/** Requests answered in cookies although they did not ask: a refresh that presented its refresh cookie. */
const answeredInCookies = new WeakSet<Request>();

/** Marks a request to be answered in cookies (the refresh route, when the refresh token came from a cookie). */
export function answerInCookies(request: Request): void {
  answeredInCookies.add(request);
}

const wantsCookies = (request: Request) => request.headers.get(COOKIE_MODE_HEADER) === "1" || answeredInCookies.has(request);

const isTokenResponse = (value: unknown): value is TokenResponse =>
  typeof value === "object" &&
  value !== null &&
  (value as { tokenType?: unknown }).tokenType === "Bearer" &&
  typeof (value as { accessToken?: unknown }).accessToken === "string";

type CookieJar = Record<string, Cookie<unknown>>;

function cookieAttributes(cookies: SessionCookies, maxAge: number) {
  return { path: "/", httpOnly: true, sameSite: "lax" as const, secure: cookies.secure, maxAge };
}

/** Writes a TokenResponse's tokens into the jar; answers the body without them. */
export function setSessionCookies(jar: CookieJar, config: Config, response: TokenResponse) {
  const cookies = sessionCookies(config);
  const { accessToken, refreshToken, ...body } = response;
  jar[cookies.access]?.set({ value: accessToken, ...cookieAttributes(cookies, response.expiresIn) });
  // An impersonation answer has no refresh token: the access cookie alone, which dies with its token.
  if (refreshToken) jar[cookies.refresh]?.set({ value: refreshToken, ...cookieAttributes(cookies, config.REFRESH_TOKEN_TTL_S) });
  return body;
}

/** Expires both session cookies (logout, account deletion). */
export function clearSessionCookies(jar: CookieJar, config: Config): void {
  const cookies = sessionCookies(config);
  for (const name of [cookies.access, cookies.refresh]) jar[name]?.set({ value: "", ...cookieAttributes(cookies, 0) });
}

/**
 * The one place a TokenResponse becomes cookies: any route that answers one gets browser sessions without knowing
 * about them. Runs after the answer was checked against its schema, so routes keep documenting the full TokenResponse.
 * Also refuses, before anything runs, a cookie sign-in from an untrusted page (login CSRF).
 */
export function browserSessions(seed: string, config: Config, owns: (url: string) => boolean) {
  const cookies = sessionCookies(config);
  return new Elysia({ name: "auth.browser-sessions", seed })
    .onRequest(({ request }) => {
      // Our paths only (a host app's routes are its own), and answered here: mounted, a request-wide hook's error
      // would go to the host's error handler.
      if (!owns(request.url)) return;
      // A Bearer request cannot be forged by another page; a cookie sign-in from one would sign the victim into the
      // attacker's account.
      try {
        if (request.headers.get(COOKIE_MODE_HEADER) === "1" && !request.headers.has("authorization")) assertTrustedCookieSignIn(request, cookies);
      } catch (error) {
        if (error instanceof AuthError) return errorResponse(error);
        throw error;
      }
    })
    .mapResponse({ as: "scoped" }, ({ request, responseValue, cookie, set }) => {
      if (!isTokenResponse(responseValue) || !wantsCookies(request)) return;
      const body = setSessionCookies(cookie, config, responseValue);
      return new Response(JSON.stringify(body), {
        status: typeof set.status === "number" ? set.status : 200,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    });
}
