import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema } from "../../src/core-routes";
import { definePlugin, type OptionalApis } from "../../src/plugin";
import type { AdminApi } from "../admin/api";
import { authGuard } from "../../src/sessions/guard";
import { webhookErrors } from "./errors";
import { webhookDeliveries } from "./schema";
import { deliveryWorker, listDeliveries, outboxSink, retryDelivery, sweepDeliveries } from "./service";
import { webhookSettings } from "./settings";

const deliverySchema = z.object({
  id: z.string(),
  url: z.string(),
  type: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number(),
  lastResponseStatus: z.number().nullable(),
  lastAttemptAt: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  createdAt: z.string(),
});

const adminOnly = { 401: errorSchema, 403: errorSchema };

/** What receivers get, for the spec: the one place a client reads the events' format. */
const EVENTS_DOC =
  "\n\n**Events sent** (Standard Webhooks): a POST of `{\"type\", \"timestamp\" (ISO time of the event), \"data\"}` with headers " +
  "`webhook-id`, `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, " +
  "one per secret of `WEBHOOK_SECRET`, space-separated). Types and their `data` (`User` as `GET /auth/me` answers it): " +
  "`user.created` `{user}` (every way an account comes to be; a guest becoming a full account is `user.updated`), " +
  "`user.updated` `{user}` (profile, email, verification, roles), `user.deleted` `{user: {id, email}}`, " +
  "`user.signed_in` `{user, session: {id, amr, ip, userAgent}}` (every new session, not refreshes), " +
  "`user.sign_in_failed` `{email, userId, method, ip}`, `user.banned` / `user.unbanned` `{user, reason, until}`, " +
  "`session.revoked` `{userId, sessionId, reason}` (one per session), `password.changed` / `password.reset` `{userId}`, " +
  "`email.changed` `{userId, email}`, `mfa.enabled` / `mfa.disabled` `{userId}`, `passkey.added` / `passkey.removed` " +
  "`{userId, passkeyId}`, `account.linked` / `account.unlinked` `{userId, provider}`, `team.created` / `team.deleted` " +
  "`{team: {id, name}}`, `team.member_added` / `team.member_removed` `{teamId, userId, role}`, `invitation.created` / " +
  "`invitation.accepted` `{invitation: {id, email, teamId, role}}`. Never a password, hash, token, code or secret.";

/** Each server's worker, made when the plugin's hooks are installed and woken by its routes. */
const workers = new WeakMap<AuthContext, ReturnType<typeof deliveryWorker>>();

/** The outbox, its worker and its sweep; with no URL (AUTH_PLUGINS lists it, WEBHOOK_URLS is empty) nothing is sent. */
function installOutbox(ctx: AuthContext) {
  if (ctx.config.WEBHOOK_URLS.length === 0) return {};
  const worker = deliveryWorker(ctx);
  workers.set(ctx, worker);
  ctx.events.setSink(outboxSink(ctx, () => worker.wake()));
  worker.start();
  const sweep = async () => {
    const swept = await sweepDeliveries(ctx);
    if (swept > 0) ctx.logger.info("old webhook deliveries swept", { count: swept });
  };
  return { maintenance: [sweep], shutdown: [() => worker.stop()] };
}

/**
 * Events out as Standard Webhooks: the core's events land in an outbox table in the transaction of their change, and a
 * worker on every instance sends them, signed, with retries. With the admin plugin on, admins list deliveries and
 * retry one by hand, behind its guard (the role read from the database, checked before the input); with it off, the
 * routes are not there (404).
 */
function webhookRoutes(ctx: AuthContext, { admin }: OptionalApis<typeof WEBHOOKS_USES>) {
  // The type is the routes' whatever is on: the Eden client sees them, and a server without the admin plugin answers 404.
  if (!admin) return new Elysia({ name: "plugin.webhooks", seed: ctx.id }) as unknown as ReturnType<typeof deliveryRoutes>;
  return deliveryRoutes(ctx, admin);
}

const WEBHOOKS_USES = ["admin"] as const;

function deliveryRoutes(ctx: AuthContext, admin: AdminApi) {
  return new Elysia({ name: "plugin.webhooks", seed: ctx.id, prefix: "/admin/webhooks", detail: { tags: ["webhooks"] } })
    .use(authGuard(ctx))
    .use(admin.guard)
    .get(
      "/deliveries",
      ({ query }) => listDeliveries(ctx, query),
      {
        admin: true,
        query: z.object({
          status: z.enum(["pending", "delivered", "failed"]).optional(),
          type: z.string().max(64).optional(),
          limit: z.coerce.number().int().min(1).max(100).default(20),
          cursor: z.string().max(512).optional(),
        }),
        response: { 200: z.object({ deliveries: z.array(deliverySchema), nextCursor: z.string().nullable() }), 400: errorSchema, ...adminOnly },
        detail: {
          summary: "Webhook deliveries (admins only)",
          description:
            "One delivery per event and URL in `WEBHOOK_URLS`; its `id` is the `webhook-id` header, the same on every attempt. Newest first; " +
            "`limit` 1 to 100 (default 20); pass `nextCursor` as `cursor` for the next page (null on the last). `status` is `pending` " +
            "(waiting for its next attempt, `nextAttemptAt`), `delivered` (a 2xx within 5 s) or `failed` (`WEBHOOK_MAX_ATTEMPTS` attempts failed). " +
            "Retries follow `WEBHOOK_BACKOFF_S` x 1, 6, 24, 120, 720, then x 4320 (6 h at the default 5 s), each +-20%. " +
            "Delivered rows are swept after 7 days, failed ones after 30. `403 FORBIDDEN` without the global `admin` role." +
            EVENTS_DOC,
        },
      },
    )
    .post(
      "/deliveries/:id/retry",
      async ({ admin, params, meta, set }) => {
        if (!(await retryDelivery(ctx, params.id))) throw webhookErrors.deliveryNotFound();
        await ctx.audit.record({ type: "webhook_retried", userId: admin.id, meta, data: { adminId: admin.id, deliveryId: params.id } });
        workers.get(ctx)?.wake();
        set.status = 202;
      },
      {
        // It changes something, so like every such admin route it needs a recent proof of a factor (API.md "Step-up").
        admin: "step-up",
        // The route takes no body; not parsing one lets an empty JSON or form body through.
        parse: "none",
        params: z.object({ id: z.string().max(64) }),
        response: { 404: errorSchema, ...adminOnly },
        detail: {
          summary: "Retry a webhook delivery now (admins only)",
          description:
            "`202`: one more attempt leaves at once with the same `webhook-id`; a `failed` delivery becomes `pending` again (and `failed` " +
            "again if this attempt fails too). Unknown id: `404 NOT_FOUND`. Audited as `webhook_retried` on the admin, with `data.deliveryId`.",
        },
      },
    );
}

export default definePlugin({
  id: "webhooks",
  // On when WEBHOOK_URLS is set, unless AUTH_PLUGINS is set and leaves it out.
  onByDefault: (env) => typeof env.WEBHOOK_URLS === "string" && env.WEBHOOK_URLS.trim() !== "",
  settings: webhookSettings,
  tables: { webhookDeliveries },
  hooks: installOutbox,
  uses: WEBHOOKS_USES,
  routes: webhookRoutes,
});
