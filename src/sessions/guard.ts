import { Elysia } from "elysia";
import type { AuthContext } from "../context";
import { AuthError, errors } from "../errors";
import { requestMeta } from "../request";
import { assertTrustedOrigin, presentedCredential, sessionCookies } from "./cookies";
import type { AuthInfo } from "./service";
import { assertRecentProof, type StepUpMode } from "./step-up";

/**
 * Authenticates a request as the `auth` macro does (its Authorization header, else the access cookie, which must then
 * pass the CSRF rule), for a plugin's own guard that must run before the body is validated.
 */
export function authenticateRequest(ctx: AuthContext, request: Request): Promise<AuthInfo> {
  const cookies = sessionCookies(ctx.config);
  const credential = presentedCredential(request, cookies);
  if (credential?.viaCookie) assertTrustedOrigin(request, cookies);
  return ctx.sessions.authenticate(credential?.authorization);
}

/**
 * The `auth` macro: `{ auth: true }` on a route resolves the Bearer token (or the browser's access cookie) into
 * `auth` or answers 401; `{ optionalAuth: true }` resolves it when one is sent (a guest upgrading) and gives
 * `auth: null` otherwise; `{ stepUp: true }` (instead of `auth`) also needs a recent proof of a factor
 * (src/sessions/step-up.ts), checked right after authentication and before the body is validated, so a thief's
 * request learns nothing from validation; `{ stepUp: "password" }` for a route whose body takes the current password,
 * which then counts as that proof. Every route also gets `meta` (client IP and user agent).
 */
export function authGuard(ctx: AuthContext) {
  const cookies = sessionCookies(ctx.config);
  // Before the body is read or validated: a forged request is refused having changed nothing and learnt nothing.
  const refuseCrossSiteCookie = ({ request }: { request: Request }) => {
    if (presentedCredential(request, cookies)?.viaCookie) assertTrustedOrigin(request, cookies);
  };
  // What the step-up check resolved before validation, handed to the route after it (the same request, once).
  const steppedUp = new WeakMap<Request, AuthInfo>();
  const provenCaller = async (request: Request, mode: StepUpMode) => {
    refuseCrossSiteCookie({ request });
    const auth = await ctx.sessions.authenticate(presentedCredential(request, cookies)?.authorization);
    await assertRecentProof(ctx, auth, mode);
    return auth;
  };
  return new Elysia({ name: "auth.guard", seed: ctx.id })
    .resolve({ as: "scoped" }, ({ request, server }) => ({ meta: requestMeta(ctx.config, request, server) }))
    .macro({
      auth: {
        detail: { security: [{ bearer: [] }, { cookie: [] }] },
        transform: refuseCrossSiteCookie,
        async resolve({ request }) {
          return { auth: await ctx.sessions.authenticate(presentedCredential(request, cookies)?.authorization) };
        },
      },
      optionalAuth: {
        // Either signed in (a guest upgrading, an invitee joining) or not. Every such route starts a session or
        // turns the caller's account into another: an impersonation token is refused there (it would leave the
        // admin a session of the user's without its `act`).
        detail: { security: [{ bearer: [] }, { cookie: [] }, {}] },
        transform: refuseCrossSiteCookie,
        async resolve({ request }) {
          const credential = presentedCredential(request, cookies);
          if (!credential) return { auth: null as AuthInfo | null };
          const auth = await (async () => {
            if (!credential.viaCookie) return ctx.sessions.authenticate(credential.authorization);
            // A stale cookie (its session ended elsewhere) must not stop the browser from signing in again: unlike a
            // header, nobody chose to send it. It proves nothing, so a guest it names is not upgraded.
            try {
              return await ctx.sessions.authenticate(credential.authorization);
            } catch (error) {
              if (error instanceof AuthError && error.status === 401) return null;
              throw error;
            }
          })();
          if (auth?.act) throw errors.forbidden("An impersonation token cannot sign in, sign up or join as the user");
          return { auth: auth as AuthInfo | null };
        },
      },
      stepUp: (mode: StepUpMode) => ({
        detail: { security: [{ bearer: [] }, { cookie: [] }] },
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
