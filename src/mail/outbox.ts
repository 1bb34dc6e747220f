import { eq, inArray, lte } from "drizzle-orm";
import type { Clock } from "../clock";
import { newId } from "../crypto";
import type { Db } from "../db";
import { mailOutbox } from "../db/schema";
import { describeError } from "../errors";
import type { Logger } from "../logger";
import { jittered, OutboxWorker } from "../outbox";
import type { ServerSecrets } from "../tokens/keys";
import type { Mailer, MailMessage } from "./index";

/** How long a claimed mail stays out of other instances' reach: past the SMTP timeouts of one attempt. */
export const MAIL_CLAIM_LEASE_MS = 60_000;
/** Retries wait 5 s, then twice as long each time, at most 5 minutes, each +-20%. */
export const MAIL_RETRY_FIRST_MS = 5_000;
const MAIL_RETRY_MAX_MS = 5 * 60_000;
/** A mail still not accepted an hour after it was written is given up: its codes have expired, its links nearly. */
export const MAIL_GIVE_UP_MS = 60 * 60_000;
const POLL_MS = 1_000;
const CONCURRENCY = 4;
const SEALING_PURPOSE = "mail-outbox";

/** The delay before the attempt after `failedAttempts` failed ones. */
export function mailRetryDelayMs(failedAttempts: number, random = Math.random): number {
  return jittered(Math.min(MAIL_RETRY_FIRST_MS * 2 ** (failedAttempts - 1), MAIL_RETRY_MAX_MS), 0.2, random);
}

type Claimed = { id: string; sealed: string; attempts: number; createdAt: Date };

/**
 * A durable mailer in front of a transport (SMTP): `send` writes the mail, sealed, to the `mail_outbox` table and
 * returns; a worker on every instance delivers due rows through the transport, retrying with backoff, and deletes
 * each once the transport took it. Instances share the table (FOR UPDATE SKIP LOCKED), so each mail leaves once in a
 * calm run; a mail is given up after MAIL_GIVE_UP_MS with an error line (its id, subject and the transport's error,
 * never its body: no code or link).
 */
export class OutboxMailer implements Mailer {
  private readonly worker: OutboxWorker<Claimed>;

  constructor(
    private readonly transport: Mailer,
    private readonly ports: { db: Db; secrets: ServerSecrets; clock: Clock; logger: Logger },
  ) {
    this.worker = new OutboxWorker<Claimed>(
      // No `release`: a mail in flight at shutdown may already be sent; its row waits out the lease rather than risk a copy.
      { name: "mail", claim: (limit) => this.claim(limit), attempt: (row, stop) => this.attempt(row, stop) },
      ports.logger,
      { pollMs: POLL_MS, concurrency: CONCURRENCY },
    );
  }

  start(): void {
    this.worker.start();
  }

  async send(message: MailMessage): Promise<void> {
    const now = this.ports.clock.now();
    const sealed = await this.ports.secrets.seal(SEALING_PURPOSE, JSON.stringify(message));
    await this.ports.db.insert(mailOutbox).values({ id: newId(), sealed, nextAttemptAt: now, createdAt: now });
    this.worker.wake();
  }

  async close(): Promise<void> {
    await this.worker.stop();
    await this.transport.close();
  }

  private async claim(limit: number): Promise<Claimed[]> {
    const { db, clock } = this.ports;
    const now = clock.now();
    const due = db
      .select({ id: mailOutbox.id })
      .from(mailOutbox)
      .where(lte(mailOutbox.nextAttemptAt, now))
      .orderBy(mailOutbox.nextAttemptAt)
      .limit(limit)
      .for("update", { skipLocked: true });
    return db
      .update(mailOutbox)
      .set({ nextAttemptAt: new Date(now.getTime() + MAIL_CLAIM_LEASE_MS) })
      .where(inArray(mailOutbox.id, due))
      .returning({ id: mailOutbox.id, sealed: mailOutbox.sealed, attempts: mailOutbox.attempts, createdAt: mailOutbox.createdAt });
  }

  private async attempt(row: Claimed, stop: AbortSignal): Promise<void> {
    const { db, clock, logger, secrets } = this.ports;
    let failure: string | undefined;
    let subject: string | undefined;
    try {
      const opened = await secrets.unseal(SEALING_PURPOSE, row.sealed);
      if (!opened) throw new Error("the mail opens with no key of ENCRYPTION_KEYS");
      const message = JSON.parse(opened.value) as MailMessage;
      subject = message.subject;
      await this.transport.send(message);
    } catch (error) {
      // The transport's error names the server and the step that failed, never the message's content.
      failure = describeError(error);
    }
    if (failure === undefined) {
      // Sent: a row left behind here would fall due again after the lease and send the mail a second time.
      await db.delete(mailOutbox).where(eq(mailOutbox.id, row.id));
      return;
    }
    if (stop.aborted) return;
    const now = clock.now();
    const attempts = row.attempts + 1;
    if (now.getTime() - row.createdAt.getTime() >= MAIL_GIVE_UP_MS) {
      await db.delete(mailOutbox).where(eq(mailOutbox.id, row.id));
      logger.error("mail given up", { id: row.id, subject, attempts, error: failure });
      return;
    }
    await db
      .update(mailOutbox)
      .set({ attempts, nextAttemptAt: new Date(now.getTime() + mailRetryDelayMs(attempts)) })
      .where(eq(mailOutbox.id, row.id));
    logger.warn("mail not sent yet, will retry", { id: row.id, subject, attempts, error: failure });
  }
}
