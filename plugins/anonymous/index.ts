import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";
import { errorSchema, tokenResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { definePlugin } from "../../src/plugin";
import { signInAsGuest, sweepStaleGuests } from "./service";
import { anonymousLimits, anonymousSettings } from "./settings";

/** Guest sessions: an account with no email that can later be upgraded in place, and a sweep of unused guests. */
export function anonymousPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.anonymous", seed: ctx.id, detail: { tags: ["anonymous"] } })
    .use(authGuard(ctx))
    .post(
      "/anonymous",
      async ({ meta, set }) => {
        const tokens = await signInAsGuest(ctx, meta);
        set.status = 201;
        return tokens;
      },
      {
        // The route takes no body; not parsing one lets an empty `application/json` body through.
        parse: "none",
        response: { 201: tokenResponseSchema, 400: errorSchema, 429: errorSchema },
        detail: {
          summary: "Start a guest session",
          description:
            'No body needed (an empty JSON or form body is fine). Answers `201 TokenResponse` with `user.isAnonymous: true` and `amr` `["anon"]`. ' +
            "`RATE_LIMIT_ANONYMOUS_IP` per client IP (`429`). Registering, verifying a magic code or signing in with OAuth while sending " +
            "the guest's Bearer token upgrades the guest in place: same id, everything attached kept. " +
            "Guests with no sign-in or refresh for `ANONYMOUS_TTL_DAYS` are deleted by a periodic sweep.",
        },
      },
    );
}

export default definePlugin({
  id: "anonymous",
  settings: anonymousSettings,
  limits: anonymousLimits,
  hooks: (ctx) => ({
    maintenance: [
      async () => {
        const deleted = await sweepStaleGuests(ctx);
        if (deleted > 0) ctx.logger.info("stale guests deleted", { count: deleted });
      },
    ],
  }),
  routes: anonymousPlugin,
});
