/**
 * The short-lived store: codes, challenges, rate-limit counters, revoked sessions.
 * Every operation is atomic on its own; TTLs are in seconds.
 */
export interface KeyValueStore {
  readonly kind: "redis" | "memory";
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlS: number): Promise<void>;
  /** Sets only when the key is absent; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlS: number): Promise<boolean>;
  /** Reads and deletes in one step: of many concurrent callers, one gets the value. */
  getDel(key: string): Promise<string | null>;
  del(key: string): Promise<void>;
  /** Increments a counter; the first increment starts its TTL. Returns the new count and seconds left. */
  incr(key: string, ttlS: number): Promise<{ count: number; ttlS: number }>;
  /** Adds a member to a set whose members each expire on their own after `ttlS`. */
  addExpiring(key: string, member: string, ttlS: number): Promise<void>;
  /** The members of an expiring set that have not expired yet. */
  liveMembers(key: string): Promise<string[]>;
  /** When a live member of an expiring set expires, in epoch ms; null when it is absent or expired. */
  expiryOf(key: string, member: string): Promise<number | null>;
  /** Sends a message to every subscriber of `channel`, on every instance, this one included. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Delivers the messages of `channel` to `onMessage`. `onReady` runs each time the subscription is (re)established,
   * so the subscriber can resync what it may have missed while disconnected; the subscription counts as live once
   * `onReady` has settled.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onReady: () => Promise<void> | void): Subscription;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type Subscription = {
  /** False while the subscription is down: messages may be missed, so callers must not rely on it alone. */
  readonly live: boolean;
  /** While not live, since when (epoch ms) it has been down, or was made; null while live. */
  readonly downSince: number | null;
  close(): void;
};
