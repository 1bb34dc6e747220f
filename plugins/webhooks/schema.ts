import { sql } from "drizzle-orm";
import { index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * The webhook outbox: one row per event and URL, written in the transaction of the change that made the event. The row's
 * id is the `webhook-id` its endpoint dedupes on, the same on every attempt. `nextAttemptAt` is also the claim: a worker
 * moves it past the delivery timeout when it takes the row, so a worker that dies mid-attempt leaves a row that falls
 * due again by itself (one more delivery with the same id, never none).
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    url: text("url").notNull(),
    type: text("type").notNull(),
    /** The exact bytes signed and sent, the same on every attempt. */
    body: text("body").notNull(),
    /** pending, delivered or failed */
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull(),
    lastAttemptAt: timestamp("last_attempt_at", { withTimezone: true, mode: "date" }),
    lastResponseStatus: integer("last_response_status"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [
    // What the workers poll: only pending rows are in it, so delivered history does not slow the claim.
    index("webhook_deliveries_due_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    // The admin listing, newest first, and the sweep of old rows.
    index("webhook_deliveries_created_idx").on(t.createdAt, t.id),
  ],
);

export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
