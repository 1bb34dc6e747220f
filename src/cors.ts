import { Elysia } from "elysia";
import { COOKIE_MODE_HEADER } from "./sessions/cookies";

const ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS = `authorization, content-type, x-request-id, ${COOKIE_MODE_HEADER}`;
/** The response headers a browser app may read. */
const EXPOSED_HEADERS = "x-request-id, retry-after";
const PREFLIGHT_MAX_AGE_S = "600";

/**
 * CORS for the server's own paths only: an origin in CORS_ORIGINS (or any, with `*`, then without credentials) is
 * echoed back; preflights are answered before routing. A host app's routes keep whatever CORS the host sets.
 */
export function corsPolicy(seed: string, origins: readonly string[], owns: (url: string) => boolean) {
  const anyOrigin = origins.includes("*");
  const allowed = new Set(origins);
  return new Elysia({ name: "auth.cors", seed }).onRequest(({ request, set }) => {
    if (!owns(request.url)) return;
    const origin = request.headers.get("origin");
    set.headers.vary = "Origin";
    const trusted = origin !== null && (anyOrigin || allowed.has(origin));
    if (trusted) {
      set.headers["access-control-allow-origin"] = origin;
      if (!anyOrigin) set.headers["access-control-allow-credentials"] = "true";
      set.headers["access-control-expose-headers"] = EXPOSED_HEADERS;
    }
    if (request.method !== "OPTIONS") return;
    if (trusted) {
      set.headers["access-control-allow-methods"] = ALLOWED_METHODS;
      set.headers["access-control-allow-headers"] = ALLOWED_HEADERS;
      set.headers["access-control-max-age"] = PREFLIGHT_MAX_AGE_S;
    }
    return new Response(null, { status: 204 });
  });
}
