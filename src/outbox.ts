import { describeError } from "./errors";
import type { Logger } from "./logger";

/**
 * What an outbox table (the webhooks' deliveries, the core's mail) gives its worker. The table is the queue: `claim`
 * takes up to `limit` due rows with FOR UPDATE SKIP LOCKED and pushes their next attempt past a lease in the same
 * statement, so instances share the work and a worker that dies leaves rows that fall due again by themselves.
 */
export type OutboxQueue<Row extends { id: string }> = {
  /** For log lines: what the rows are ("webhook", "mail"). */
  name: string;
  claim(limit: number): Promise<Row[]>;
  /** One attempt and its result written back; `stop` aborts it when the server shuts down. */
  attempt(row: Row, stop: AbortSignal): Promise<void>;
  /**
   * Hands rows whose attempts were aborted back at once (at shutdown), so another instance takes them now. Without it
   * they wait out their lease: right for an attempt that cannot be taken back once it may have been made (a mail).
   */
  release?(ids: string[]): Promise<void>;
};

/** `ms` with +-`jitter` spread, so the retries of one outage do not all land at once. */
export const jittered = (ms: number, jitter = 0.2, random = Math.random) => ms * (1 - jitter + 2 * jitter * random());

/**
 * Sends due outbox rows; one per instance and queue. It polls every `pollMs` for rows made elsewhere or falling due,
 * and `wake()` (after a commit that wrote rows) starts them at once. Nothing here runs on a request's path; at most
 * `concurrency` attempts are in flight, whatever the backlog.
 */
export class OutboxWorker<Row extends { id: string }> {
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;

  constructor(
    private readonly queue: OutboxQueue<Row>,
    private readonly logger: Logger,
    private readonly opts: { pollMs: number; concurrency: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.wake(), this.opts.pollMs);
    this.timer.unref?.();
    this.wake();
  }

  wake(): void {
    void this.pump();
  }

  /** Stops claiming, aborts the attempts in flight, hands their rows back and waits for them to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const attempts = [...this.inFlight.entries()];
    for (const [, { controller }] of attempts) controller.abort();
    if (attempts.length > 0) await this.queue.release?.(attempts.map(([id]) => id)).catch(() => {});
    await Promise.allSettled(attempts.map(([, { done }]) => done));
  }

  private async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const room = this.opts.concurrency - this.inFlight.size;
        if (room <= 0) break;
        const rows = await this.queue.claim(room);
        for (const row of rows) this.attempt(row);
        if (rows.length === room) this.pumpAgain = true;
      } while (this.pumpAgain && !this.stopped);
    } catch (error) {
      this.logger.warn(`${this.queue.name} claim failed`, { error: describeError(error) });
    } finally {
      this.pumping = false;
    }
  }

  private attempt(row: Row): void {
    const controller = new AbortController();
    const done = this.queue
      .attempt(row, controller.signal)
      .catch((error) => this.logger.warn(`${this.queue.name} result not recorded`, { id: row.id, error: describeError(error) }))
      .finally(() => {
        this.inFlight.delete(row.id);
        this.wake();
      });
    this.inFlight.set(row.id, { controller, done });
  }
}
