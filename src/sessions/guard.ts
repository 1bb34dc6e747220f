import { Elysia } from "elysia";
import type { AuthContext } from "../context";
import { requestMeta } from "../request";
import type { AuthInfo } from "./service";
import { assertRecentProof, type StepUpMode } from "./step-up";

/**
 * The `auth` macro: `{ auth: true }` on a route resolves the Bearer token into `auth` or answers 401;
 * `{ optionalAuth: true }` resolves it when one is sent (a guest upgrading) and gives `auth: null` otherwise;
 * `{ stepUp: true }` (instead of `auth`) also needs a recent proof of a factor (src/sessions/step-up.ts), checked
 * before the body is validated, so a thief's request learns nothing from validation; `{ stepUp: "password" }` for a
 * route whose body takes the current password, which then counts as that proof.
 * Every route also gets `meta` (client IP and user agent).
 */
export function authGuard(ctx: AuthContext) {
  // What the step-up check resolved before validation, handed to the route after it (the same request, once).
  const steppedUp = new WeakMap<Request, AuthInfo>();
  const provenCaller = async (request: Request, mode: StepUpMode) => {
    const auth = await ctx.sessions.authenticate(request.headers.get("authorization"));
    await assertRecentProof(ctx, auth, mode);
    return auth;
  };
  return new Elysia({ name: "auth.guard", seed: ctx.id })
    .resolve({ as: "global" }, ({ request, server }) => ({ meta: requestMeta(ctx.config, request, server) }))
    .macro({
      auth: {
        async resolve({ headers }) {
          return { auth: await ctx.sessions.authenticate(headers.authorization) };
        },
      },
      optionalAuth: {
        async resolve({ headers }) {
          const auth: AuthInfo | null = headers.authorization ? await ctx.sessions.authenticate(headers.authorization) : null;
          return { auth };
        },
      },
      stepUp: (mode: StepUpMode) => ({
        async transform({ request }) {
          steppedUp.set(request, await provenCaller(request, mode));
        },
        async resolve({ request }) {
          // Set by transform, which runs first; checked again, never skipped, should anything ever reorder the two.
          return { auth: steppedUp.get(request) ?? (await provenCaller(request, mode)) };
        },
      }),
    });
}
