import type { Config } from "../../src/config";
import { randomToken, safeEqual, sha256 } from "../../src/crypto";

/**
 * A redirect flow is bound to the browser that started it: the first answer of the flow sets a cookie holding a random
 * secret, the flow's state remembers only the secret's hash, and the callback refuses a browser that does not bring
 * the secret back. Without it, whoever starts a flow (a guest with a planted passkey, an account owner linking) can
 * hand the provider link to someone else and have that person's identity land in the flow's account (login CSRF).
 */
const COOKIE_BASE_NAME = "auth_oauth_flow";

/** A flow lives 10 minutes; the cookie lives as long, so a stale one never outlives its state. */
export const FLOW_TTL_S = 600;

/** Only a plain-http local development server may drop `Secure` (browsers would refuse the cookie there). */
function isLocalHttp(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(hostname);
}

/** `__Secure-` makes browsers refuse the cookie from plain http and from scripts setting it without `Secure`. */
export function flowCookieName(config: Config): string {
  return isLocalHttp(config.APP_URL) ? COOKIE_BASE_NAME : `__Secure-${COOKIE_BASE_NAME}`;
}

function cookiePath(config: Config, providerId: string): string {
  return `${config.AUTH_BASE_PATH}/oauth/${providerId}/callback`;
}

function cookie(config: Config, providerId: string, value: string, maxAgeS: number): string {
  const secure = isLocalHttp(config.APP_URL) ? "" : "; Secure";
  return `${flowCookieName(config)}=${value}; Path=${cookiePath(config, providerId)}; Max-Age=${maxAgeS}; HttpOnly; SameSite=Lax${secure}`;
}

export type BrowserBinding = { cookie: string; secretHash: string };

/** A fresh secret for a flow of `providerId`: the Set-Cookie line for the browser and the hash for the state. */
export function newBrowserBinding(config: Config, providerId: string): BrowserBinding {
  const secret = randomToken();
  return { cookie: cookie(config, providerId, secret, FLOW_TTL_S), secretHash: sha256(secret) };
}

/** The Set-Cookie line that removes the flow cookie once its callback has run, whatever the outcome. */
export function clearedBrowserBinding(config: Config, providerId: string): string {
  return cookie(config, providerId, "", 0);
}

function readCookie(header: string | null, name: string): string | undefined {
  for (const part of header?.split(";") ?? []) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Whether this request's browser holds the secret whose hash the flow stored; compared in constant time. */
export function isSameBrowser(config: Config, cookieHeader: string | null, secretHash: string): boolean {
  const secret = readCookie(cookieHeader, flowCookieName(config));
  return secret !== undefined && secret !== "" && safeEqual(sha256(secret), secretHash);
}
