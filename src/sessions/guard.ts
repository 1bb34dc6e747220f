import { Elysia } from "elysia";
import type { AuthContext } from "../context";
import { AuthError } from "../errors";
import { requestMeta } from "../request";
import { assertTrustedOrigin, presentedCredential, sessionCookies } from "./cookies";
import type { AuthInfo } from "./service";

/**
 * The `auth` macro: `{ auth: true }` on a route resolves the Bearer token (or the browser's access cookie) into
 * `auth` or answers 401; `{ optionalAuth: true }` resolves it when one is sent (a guest upgrading) and gives
 * `auth: null` otherwise. Every route also gets `meta` (client IP and user agent).
 */
export function authGuard(ctx: AuthContext) {
  const cookies = sessionCookies(ctx.config);
  // Before the body is read or validated: a forged request is refused having changed nothing and learnt nothing.
  const refuseCrossSiteCookie = ({ request }: { request: Request }) => {
    if (presentedCredential(request, cookies)?.viaCookie) assertTrustedOrigin(request, cookies);
  };
  return new Elysia({ name: "auth.guard", seed: ctx.id })
    .resolve({ as: "scoped" }, ({ request, server }) => ({ meta: requestMeta(ctx.config, request, server) }))
    .macro({
      auth: {
        transform: refuseCrossSiteCookie,
        async resolve({ request }) {
          return { auth: await ctx.sessions.authenticate(presentedCredential(request, cookies)?.authorization) };
        },
      },
      optionalAuth: {
        transform: refuseCrossSiteCookie,
        async resolve({ request }) {
          const credential = presentedCredential(request, cookies);
          if (!credential) return { auth: null as AuthInfo | null };
          if (!credential.viaCookie) return { auth: await ctx.sessions.authenticate(credential.authorization) as AuthInfo | null };
          // A stale cookie (its session ended elsewhere) must not stop the browser from signing in again: unlike a
          // header, nobody chose to send it. It proves nothing, so a guest it names is not upgraded.
          try {
            return { auth: await ctx.sessions.authenticate(credential.authorization) as AuthInfo | null };
          } catch (error) {
            if (error instanceof AuthError && error.status === 401) return { auth: null as AuthInfo | null };
            throw error;
          }
        },
      },
    });
}
