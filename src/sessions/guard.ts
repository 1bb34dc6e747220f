import { Elysia } from "elysia";
import type { AuthContext } from "../context";
import { requestMeta } from "../request";
import type { AuthInfo } from "./service";

/**
 * The `auth` macro: `{ auth: true }` on a route resolves the Bearer token into `auth` or answers 401;
 * `{ optionalAuth: true }` resolves it when one is sent (a guest upgrading) and gives `auth: null` otherwise.
 * Every route also gets `meta` (client IP and user agent).
 */
export function authGuard(ctx: AuthContext) {
  return new Elysia({ name: "auth.guard", seed: ctx.id })
    .resolve({ as: "scoped" }, ({ request, server }) => ({ meta: requestMeta(ctx.config, request, server) }))
    .macro({
      auth: {
        detail: { security: [{ bearer: [] }] },
        async resolve({ headers }) {
          return { auth: await ctx.sessions.authenticate(headers.authorization) };
        },
      },
      optionalAuth: {
        // Either signed in (a guest upgrading) or not.
        detail: { security: [{ bearer: [] }, {}] },
        async resolve({ headers }) {
          const auth: AuthInfo | null = headers.authorization ? await ctx.sessions.authenticate(headers.authorization) : null;
          return { auth };
        },
      },
    });
}
