import { createHmac } from "node:crypto";
import { and, desc, eq, inArray, lt, lte, or } from "drizzle-orm";
import type { AuthContext } from "../../src/context";
import { newId } from "../../src/crypto";
import type { Db } from "../../src/db";
import type { EventSink, TimedEvent } from "../../src/events";
import { jittered, OutboxWorker } from "../../src/outbox";
import { webhookErrors } from "./errors";
import { type WebhookDeliveryRow, webhookDeliveries } from "./schema";
import { secretKey } from "./settings";

/** A 2xx within this long, the whole answer read, delivers; anything later is a failed attempt. */
export const DELIVERY_TIMEOUT_MS = 5000;
/**
 * How long a claimed row stays out of other workers' reach: past the delivery timeout and the write of its result,
 * so in a calm run nobody takes it twice; if its worker dies, the row falls due again after this (same webhook-id).
 */
export const CLAIM_LEASE_MS = 15_000;
/** Every instance polls this often for rows made elsewhere or falling due; its own commits wake it at once. */
const POLL_MS = 250;
/** Attempts in flight per instance: bounds memory and sockets whatever the backlog (the queue itself is the table). */
const CONCURRENCY = 16;
/** Retry delays after the 1st, 2nd ... failed attempt, in units of WEBHOOK_BACKOFF_S; then the last one, again and again. */
const BACKOFF_STEPS = [1, 6, 24, 120, 720];
/** Every 6 h at the default base of 5 s (6 h = 5 s x 4320); a smaller base shrinks it like the other steps. */
const BACKOFF_CEILING = 4320;
const JITTER = 0.2;
/** Delivered rows are kept this long for the admin listing, then swept; failed ones a little longer, to be retried by hand. */
const DELIVERED_RETENTION_MS = 7 * 24 * 3600 * 1000;
const FAILED_RETENTION_MS = 30 * 24 * 3600 * 1000;

export type DeliveryStatus = "pending" | "delivered" | "failed";

/** The delay before the attempt after `failedAttempts` failed ones, with +-20% jitter so retries of an outage spread out. */
export function retryDelayMs(failedAttempts: number, baseS: number, random = Math.random): number {
  const step = BACKOFF_STEPS[failedAttempts - 1] ?? BACKOFF_CEILING;
  return jittered(baseS * 1000 * step, JITTER, random);
}

/** The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret, space-separated. */
export function signatureHeader(keys: Buffer[], id: string, timestampS: number, body: string): string {
  const signed = `${id}.${timestampS}.${body}`;
  return keys.map((key) => `v1,${createHmac("sha256", key).update(signed).digest("base64")}`).join(" ");
}

/** The outbox as the core's event sink: each event becomes one row per URL, written with the caller's transaction. */
export function outboxSink(ctx: AuthContext, wake: () => void): EventSink {
  const wanted = new Set(ctx.config.WEBHOOK_EVENTS);
  return {
    async write(db: Db, events: TimedEvent[]) {
      const rows = events
        .filter((event) => wanted.size === 0 || wanted.has(event.type))
        .flatMap((event) => {
          const body = JSON.stringify({ type: event.type, timestamp: event.at.toISOString(), data: event.data });
          return ctx.config.WEBHOOK_URLS.map((url) => ({
            id: `msg_${newId().replaceAll("-", "")}`,
            url,
            type: event.type,
            body,
            nextAttemptAt: event.at,
            createdAt: event.at,
          }));
        });
      if (rows.length > 0) await db.insert(webhookDeliveries).values(rows);
    },
    committed: wake,
  };
}

type Claimed = Pick<WebhookDeliveryRow, "id" | "url" | "body" | "attempts">;

/**
 * The worker that sends due outbox rows, one per instance (src/outbox.ts); instances share the work by claiming rows
 * with FOR UPDATE SKIP LOCKED, so each row leaves once in a calm run. A slow receiver holds one of CONCURRENCY slots
 * for at most DELIVERY_TIMEOUT_MS.
 */
export function deliveryWorker(ctx: AuthContext): OutboxWorker<Claimed> {
  const keys = ctx.config.WEBHOOK_SECRET.map((secret) => secretKey(secret) as Buffer);
  return new OutboxWorker<Claimed>(
    {
      name: "webhook",
      claim: (limit) => claimDeliveries(ctx, limit),
      async attempt(row, stop) {
        const status = await sendDelivery(ctx, keys, row, stop);
        if (!stop.aborted) await recordAttempt(ctx, row, status);
      },
      async release(ids) {
        await ctx.db
          .update(webhookDeliveries)
          .set({ nextAttemptAt: ctx.clock.now() })
          .where(and(inArray(webhookDeliveries.id, ids), eq(webhookDeliveries.status, "pending")));
      },
    },
    ctx.logger,
    { pollMs: POLL_MS, concurrency: CONCURRENCY },
  );
}

async function claimDeliveries(ctx: AuthContext, limit: number): Promise<Claimed[]> {
  const now = ctx.clock.now();
  const due = ctx.db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.status, "pending"), lte(webhookDeliveries.nextAttemptAt, now)))
    .orderBy(webhookDeliveries.nextAttemptAt)
    .limit(limit)
    .for("update", { skipLocked: true });
  return ctx.db
    .update(webhookDeliveries)
    .set({ nextAttemptAt: new Date(now.getTime() + CLAIM_LEASE_MS) })
    .where(inArray(webhookDeliveries.id, due))
    .returning({ id: webhookDeliveries.id, url: webhookDeliveries.url, body: webhookDeliveries.body, attempts: webhookDeliveries.attempts });
}

/** One attempt: the answer's status when the whole answer came within the timeout, else null. */
async function sendDelivery(ctx: AuthContext, keys: Buffer[], row: Claimed, stop: AbortSignal): Promise<number | null> {
  const timestampS = Math.floor(ctx.clock.now().getTime() / 1000);
  try {
    const response = await fetch(row.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "auth-server-webhooks",
        "webhook-id": row.id,
        "webhook-timestamp": String(timestampS),
        "webhook-signature": signatureHeader(keys, row.id, timestampS, row.body),
      },
      body: row.body,
      // A redirect is a failed attempt: following it would send signed events wherever the receiver points.
      redirect: "manual",
      signal: AbortSignal.any([stop, AbortSignal.timeout(DELIVERY_TIMEOUT_MS)]),
    });
    // The whole answer counts, read and dropped chunk by chunk so a large one costs no memory.
    const reader = response.body?.getReader();
    if (reader) for (;;) if ((await reader.read()).done) break;
    return response.status;
  } catch {
    return null;
  }
}

async function recordAttempt(ctx: AuthContext, row: Claimed, status: number | null): Promise<void> {
  const now = ctx.clock.now();
  const attempts = row.attempts + 1;
  const delivered = status !== null && status >= 200 && status < 300;
  const outcome: DeliveryStatus = delivered ? "delivered" : attempts >= ctx.config.WEBHOOK_MAX_ATTEMPTS ? "failed" : "pending";
  await ctx.db
    .update(webhookDeliveries)
    .set({
      status: outcome,
      attempts,
      lastAttemptAt: now,
      lastResponseStatus: status,
      nextAttemptAt: outcome === "pending" ? new Date(now.getTime() + retryDelayMs(attempts, ctx.config.WEBHOOK_BACKOFF_S)) : now,
    })
    .where(eq(webhookDeliveries.id, row.id));
  if (!delivered) ctx.logger.info("webhook attempt failed", { id: row.id, status, attempts, outcome });
}

export type DeliveryView = {
  id: string;
  url: string;
  type: string;
  status: DeliveryStatus;
  attempts: number;
  lastResponseStatus: number | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
};

const toView = (row: WebhookDeliveryRow): DeliveryView => ({
  id: row.id,
  url: row.url,
  type: row.type,
  status: row.status as DeliveryStatus,
  attempts: row.attempts,
  lastResponseStatus: row.lastResponseStatus,
  lastAttemptAt: row.lastAttemptAt?.toISOString() ?? null,
  nextAttemptAt: row.status === "pending" ? row.nextAttemptAt.toISOString() : null,
  createdAt: row.createdAt.toISOString(),
});

/** The cursor is the last row's (createdAt, id): the listing's own order, stable while rows are added. */
const encodeCursor = (row: WebhookDeliveryRow) => Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString("base64url");

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [at, id] = Buffer.from(cursor, "base64url").toString().split("|");
  const createdAt = new Date(at ?? "");
  if (!id || Number.isNaN(createdAt.getTime())) throw webhookErrors.invalidCursor();
  return { createdAt, id };
}

/** Deliveries newest first, filtered by status and type. */
export async function listDeliveries(
  ctx: AuthContext,
  query: { status?: DeliveryStatus; type?: string; limit: number; cursor?: string },
): Promise<{ deliveries: DeliveryView[]; nextCursor: string | null }> {
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const d = webhookDeliveries;
  const rows = await ctx.db
    .select()
    .from(d)
    .where(
      and(
        query.status ? eq(d.status, query.status) : undefined,
        query.type ? eq(d.type, query.type) : undefined,
        after ? or(lt(d.createdAt, after.createdAt), and(eq(d.createdAt, after.createdAt), lt(d.id, after.id))) : undefined,
      ),
    )
    .orderBy(desc(d.createdAt), desc(d.id))
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return { deliveries: page.map(toView), nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
}

/** Makes one more attempt now with the same webhook-id; a failed delivery becomes pending again. False: no such delivery. */
export async function retryDelivery(ctx: AuthContext, id: string): Promise<boolean> {
  const [row] = await ctx.db
    .update(webhookDeliveries)
    // The count stays: one more failure past WEBHOOK_MAX_ATTEMPTS makes a failed delivery failed again.
    .set({ status: "pending", nextAttemptAt: ctx.clock.now() })
    .where(eq(webhookDeliveries.id, id))
    .returning({ id: webhookDeliveries.id });
  return row !== undefined;
}

/** Removes delivered rows past their retention (and failed ones past theirs); answers how many went. */
export async function sweepDeliveries(ctx: AuthContext): Promise<number> {
  const now = ctx.clock.now().getTime();
  const d = webhookDeliveries;
  const gone = await ctx.db
    .delete(d)
    .where(
      or(
        and(eq(d.status, "delivered"), lt(d.createdAt, new Date(now - DELIVERED_RETENTION_MS))),
        and(eq(d.status, "failed"), lt(d.createdAt, new Date(now - FAILED_RETENTION_MS))),
      ),
    )
    .returning({ id: d.id });
  return gone.length;
}
