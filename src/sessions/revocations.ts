import { and, eq, gt, lt, sql } from "drizzle-orm";
import type { Clock } from "../clock";
import type { Db } from "../db";
import { revocations } from "../db/schema";
import type { KeyValueStore, Subscription } from "../kv";
import type { Logger } from "../logger";
import { REVOKED_CHANNEL, REVOKED_SET, revocationTtlS } from "./revocation-keys";

/** Messages on REVOKED_CHANNEL that start with this carry a changed user's id instead of session ids. */
const USER_CHANGED = "user:";
/** How long a revocation waits to hear its own message back before answering anyway. */
const ECHO_TIMEOUT_MS = 250;

/**
 * Which sessions (and sessions' team claims) are revoked, as every instance sees it. The record is Postgres (the
 * `revocations` table, written in the transaction of the change: `record`); once that commits, the `revoked` channel
 * tells every instance at once (`announce`), and each keeps the entries in memory, so a request pays no round trip
 * while the channel is live. While it is down (Redis silent or gone, or not yet synced), each check asks Postgres,
 * and a reconnect reloads the record from there: Redis losing its keys revives no token.
 */
export class Revocations {
  /** Revoked entries, with the time (ms) after which no access token they refuse can still be valid. */
  private readonly revokedIds = new Map<string, number>();
  /** Transactions opened by `transaction`, with the entries they recorded, announced once they commit. */
  private readonly pending = new WeakMap<object, string[]>();
  /** Revocation messages this instance published and waits to hear back, with who waits. */
  private readonly echoes = new Map<string, Array<() => void>>();
  private readonly subscription: Subscription;
  /** As long as any access token can live: impersonation tokens may outlive ordinary ones. */
  private readonly ttlS: number;

  constructor(
    private readonly db: Db,
    private readonly kv: KeyValueStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    accessTokenTtlS: number,
    /**
     * Told of every user changed, here or on another instance, and of each resync (when changes may have been missed),
     * to drop cached copies. A revoked session needs no telling: every request checks revocation first.
     */
    private readonly listener: { userChanged(userId: string): void; resynced(): void },
  ) {
    this.ttlS = revocationTtlS(accessTokenTtlS);
    this.subscription = kv.subscribe(
      REVOKED_CHANNEL,
      (message) => {
        if (message.startsWith(USER_CHANGED)) listener.userChanged(message.slice(USER_CHANGED.length));
        else for (const entry of message.split(",")) this.remember(entry);
        const waiting = this.echoes.get(message);
        if (waiting) {
          this.echoes.delete(message);
          for (const resolve of waiting) resolve();
        }
      },
      () => this.resync(),
    );
  }

  /** True while revocations reach this instance through the channel; otherwise each check asks the store. */
  get live(): boolean {
    return this.subscription.live;
  }

  close(): void {
    this.subscription.close();
  }

  /** When an entry was revoked, in ms; undefined when it is not. */
  async revokedAt(entry: string): Promise<number | undefined> {
    const now = this.clock.now();
    if (this.subscription.live) {
      const until = this.revokedIds.get(entry);
      return until != null && until > now.getTime() ? until - this.ttlS * 1000 : undefined;
    }
    // While the channel is down an announcement may be missed, so ask the record itself (bounded like every query).
    const [row] = await this.db
      .select({ revokedAt: revocations.revokedAt })
      .from(revocations)
      .where(and(eq(revocations.entry, entry), gt(revocations.expiresAt, now)))
      .limit(1);
    return row?.revokedAt.getTime();
  }

  /**
   * Runs `work` in `transaction` (a transaction of the caller's making); what it `record`s is announced once it has
   * committed, never before: a change cut halfway revokes nothing anywhere.
   */
  async transaction<T>(transaction: (work: (tx: Db) => Promise<T>) => Promise<T>, work: (tx: Db) => Promise<T>): Promise<T> {
    const recorded: string[] = [];
    const result = await transaction(async (tx) => {
      this.pending.set(tx, recorded);
      try {
        return await work(tx);
      } finally {
        this.pending.delete(tx);
      }
    });
    await this.announce(recorded);
    return result;
  }

  /**
   * Writes revocations into the record with `tx`, a transaction opened by `transaction`, which announces them once it
   * commits. Any other handle is refused before anything is written: announcing inside a transaction made elsewhere
   * would tell every instance before the commit, and a rollback would leave sessions refused that the database keeps.
   */
  async record(tx: Db, entries: string[]): Promise<void> {
    const pending = this.pending.get(tx);
    if (!pending) throw new Error("revocations are recorded inside Sessions.transaction only");
    await this.write(tx, entries);
    pending.push(...entries);
  }

  /** Writes revocations into the record with `tx`, for the caller to `announce` once it has committed. */
  async write(tx: Db, entries: string[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.ttlS * 1000);
    await tx
      .insert(revocations)
      .values(entries.map((entry) => ({ entry, revokedAt: now, expiresAt })))
      // A claim revoked again (the same role lost twice) refuses the tokens issued before the later revocation.
      .onConflictDoUpdate({ target: revocations.entry, set: { revokedAt: sql`excluded.revoked_at`, expiresAt: sql`excluded.expires_at` } });
  }

  /** Deletes the rows no access token can need any more; safe on every instance at once. */
  async deleteExpired(): Promise<number> {
    const gone = await this.db.delete(revocations).where(lt(revocations.expiresAt, this.clock.now())).returning({ entry: revocations.entry });
    return gone.length;
  }

  /**
   * Announces revocations already in the record. A failure is logged, not thrown: the change is done, and instances
   * that missed the announcement have a channel that is down too (the same Redis), so they ask the record meanwhile.
   */
  async announce(entries: string[]): Promise<void> {
    try {
      await this.publish(entries);
    } catch (error) {
      this.logger.warn("revocations recorded but not announced: instances read them from the database until the channel is back", {
        count: entries.length,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Tells every instance of revocations: the KV set (read by src/verify.ts in other services), then the channel. */
  private async publish(entries: string[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.remember(entry);
    await Promise.all(entries.map((entry) => this.kv.addExpiring(REVOKED_SET, entry, this.ttlS)));
    const message = entries.join(",");
    const echoed = this.subscription.live ? this.echo(message) : undefined;
    await this.kv.publish(REVOKED_CHANNEL, message);
    // Redis writes a message to every subscriber's connection at once: once it is back here, the other instances have
    // it too, so the caller's next request is refused wherever it lands. Bounded, so a lost message cannot hang us.
    await echoed;
  }

  /** Tells every instance a user changed; if the message is lost, their cached copies still expire on their own. */
  userChanged(userId: string): void {
    this.listener.userChanged(userId);
    this.kv.publish(REVOKED_CHANNEL, `${USER_CHANGED}${userId}`).catch(() => {});
  }

  private remember(entry: string, revokedAtMs = this.clock.now().getTime()): void {
    if (!entry) return;
    const t = this.clock.now().getTime();
    this.revokedIds.set(entry, Math.max(this.revokedIds.get(entry) ?? 0, revokedAtMs + this.ttlS * 1000));
    // Ids past the lifetime of any access token can go; sweeping on growth keeps the cost amortised.
    if (this.revokedIds.size % 1024 === 0) for (const [id, until] of this.revokedIds) if (until <= t) this.revokedIds.delete(id);
  }

  /** After a (re)connect: announcements may have been missed, so reload every revocation still in force from the record. */
  private async resync(): Promise<void> {
    this.listener.resynced();
    const rows = await this.db
      .select({ entry: revocations.entry, revokedAt: revocations.revokedAt })
      .from(revocations)
      .where(gt(revocations.expiresAt, this.clock.now()));
    for (const row of rows) this.remember(row.entry, row.revokedAt.getTime());
  }

  private echo(message: string): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const left = (this.echoes.get(message) ?? []).filter((w) => w !== done);
        if (left.length > 0) this.echoes.set(message, left);
        else this.echoes.delete(message);
        resolve();
      }, ECHO_TIMEOUT_MS);
      this.echoes.set(message, [...(this.echoes.get(message) ?? []), done]);
    });
  }
}
