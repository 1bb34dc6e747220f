import { and, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "./db";
import { auditEvents } from "./db/schema";
import type { RequestMeta } from "./request";

/** Security event types written by the core; plugins add their own names. */
export type AuditType =
  | "sign_in"
  | "sign_in_failed"
  | "sign_up"
  | "refresh_reuse"
  | "logout"
  | "session_revoked"
  | "account_deleted"
  | "profile_updated"
  | (string & {});

export type AuditEvent = { type: AuditType; userId?: string | null; meta?: RequestMeta; data?: Record<string, unknown> };

export class AuditLog {
  private readonly listeners: Array<(event: AuditEvent) => void> = [];
  /** Built once: every sign-in records an event, and building an insert costs more than sending it. */
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db
      .insert(auditEvents)
      .values({
        type: sql.placeholder("type"),
        userId: sql.placeholder("userId"),
        ip: sql.placeholder("ip"),
        userAgent: sql.placeholder("userAgent"),
        // Raw, so that an event without data stores SQL NULL (the column's encoder would store the JSON value null).
        data: sql`${sql.placeholder("data")}`,
      })
      .prepare("audit_record");
  }

  async record(event: AuditEvent): Promise<void> {
    await this.insert.execute({
      type: event.type,
      userId: event.userId ?? null,
      ip: event.meta?.ip ?? null,
      userAgent: event.meta?.userAgent ?? null,
      data: event.data == null ? null : JSON.stringify(event.data),
    });
    for (const listener of this.listeners) listener(event);
  }

  /** Runs `listener` after each recorded event (e.g. to count sign-ins in metrics). */
  onRecord(listener: (event: AuditEvent) => void): void {
    this.listeners.push(listener);
  }

  /** A user's own events, newest first; `before` is the id cursor from the previous page. */
  async listForUser(userId: string, opts: { limit: number; before?: number }) {
    const rows = await this.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, userId), opts.before ? lt(auditEvents.id, opts.before) : undefined))
      .orderBy(desc(auditEvents.id))
      .limit(opts.limit);
    return rows;
  }
}
