import type { Db } from "./db";

/** Every event the server announces (API.md, plugin `webhooks`): the core and plugins emit them, a sink sends them on. */
export const EVENT_TYPES = [
  "user.created",
  "user.updated",
  "user.deleted",
  "user.signed_in",
  "user.sign_in_failed",
  "user.banned",
  "user.unbanned",
  "session.revoked",
  "password.changed",
  "password.reset",
  "email.changed",
  "mfa.enabled",
  "mfa.disabled",
  "passkey.added",
  "passkey.removed",
  "account.linked",
  "account.unlinked",
  "team.created",
  "team.deleted",
  "team.member_added",
  "team.member_removed",
  "invitation.created",
  "invitation.accepted",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One event: its type and its `data`, ids and public fields only (never a password, hash, token, code or secret). */
export type AuthEvent = { type: EventType; data: Record<string, unknown> };
/** An event as a sink receives it, with the time it happened. */
export type TimedEvent = AuthEvent & { at: Date };

/** Where events go (the webhooks plugin's outbox); it writes with the handle it is given, inside the caller's transaction. */
export type EventSink = {
  write(db: Db, events: TimedEvent[]): Promise<void>;
  /** Told after a write committed, so the rows can leave at once instead of at the next poll. */
  committed(): void;
};

/**
 * The core's event port. Code that changes something calls `emit(tx, event)` with the handle of the transaction that
 * makes the change, so the event commits with it or not at all; the core knows no sink by name.
 */
export class Events {
  private sink: EventSink | undefined;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  /** Installed by a plugin at start; with none, `emit` does nothing and `atomic` adds no transaction. */
  setSink(sink: EventSink): void {
    this.sink = sink;
  }

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  /** Writes events with `db`, a transaction's handle or the pool's (then the write commits by itself). */
  async emit(db: Db, ...events: AuthEvent[]): Promise<void> {
    if (!this.sink || events.length === 0) return;
    const at = this.now();
    await this.sink.write(
      db,
      events.map((event) => ({ ...event, at })),
    );
    if (db === this.db) this.sink.committed();
  }

  /** Runs `work` in a transaction whatever the sink; what it emits is handed on once it commits. */
  async transaction<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    const result = await this.db.transaction((tx) => work(tx as unknown as Db));
    this.sink?.committed();
    return result;
  }

  /**
   * Runs `work` so that what it emits commits with what it changes: in a transaction when a sink listens (or inside
   * the caller's, when `db` already is one); without a sink there is nothing to keep together, so no transaction is
   * opened and the change costs what it did before.
   */
  async atomic<T>(work: (db: Db) => Promise<T>, db: Db = this.db): Promise<T> {
    const sink = this.sink;
    if (!sink || db !== this.db) return work(db);
    const result = await this.db.transaction((tx) => work(tx as unknown as Db));
    sink.committed();
    return result;
  }
}
