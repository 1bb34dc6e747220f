import type { Clock } from "../clock";
import type { KeyValueStore, Subscription } from "../kv";
import { REVOKED_CHANNEL, REVOKED_SET, revocationTtlS } from "./revocation-keys";

/** Messages on REVOKED_CHANNEL that start with this carry a changed user's id instead of session ids. */
const USER_CHANGED = "user:";
/** How long a revocation waits to hear its own message back before answering anyway. */
const ECHO_TIMEOUT_MS = 250;

/**
 * Which sessions (and sessions' team claims) are revoked, as every instance sees it: the KV store's expiring set is
 * the record, the `revoked` channel tells every instance at once, and each instance keeps the ids in memory so a
 * request pays no round trip while the channel is live. While it is down, each check asks the store.
 */
export class Revocations {
  /** Revoked entries, with the time (ms) after which no access token they refuse can still be valid. */
  private readonly revokedIds = new Map<string, number>();
  /** Revocation messages this instance published and waits to hear back, with who waits. */
  private readonly echoes = new Map<string, Array<() => void>>();
  private readonly subscription: Subscription;
  /** As long as any access token can live: impersonation tokens may outlive ordinary ones. */
  private readonly ttlS: number;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly clock: Clock,
    accessTokenTtlS: number,
    /** Told of every entry revoked, here or on another instance, and of every user changed (to drop cached copies). */
    private readonly listener: { revoked(entry: string): void; userChanged(userId: string): void },
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

  /** True when this instance has heard of the entry's revocation (no round trip; for caches, not for refusals). */
  heardOf(entry: string): boolean {
    return this.revokedIds.has(entry);
  }

  /** When an entry was revoked, in ms; undefined when it is not. */
  async revokedAt(entry: string): Promise<number | undefined> {
    // While the subscription is down a revocation may be missed, so ask the store itself.
    const until = this.subscription.live ? this.revokedIds.get(entry) : await this.kv.expiryOf(REVOKED_SET, entry);
    return until != null && until > this.clock.now().getTime() ? until - this.ttlS * 1000 : undefined;
  }

  /** Records revocations where every instance sees them: the store (for resyncs and fallbacks), then the channel. */
  async announce(entries: string[]): Promise<void> {
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

  private remember(entry: string): void {
    if (!entry) return;
    const t = this.clock.now().getTime();
    this.revokedIds.set(entry, t + this.ttlS * 1000);
    this.listener.revoked(entry);
    // Ids past the lifetime of any access token can go; sweeping on growth keeps the cost amortised.
    if (this.revokedIds.size % 1024 === 0) for (const [id, until] of this.revokedIds) if (until <= t) this.revokedIds.delete(id);
  }

  /** After a (re)connect: messages may have been missed, so reload every revocation still in force. */
  private async resync(): Promise<void> {
    for (const entry of await this.kv.liveMembers(REVOKED_SET)) this.remember(entry);
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
