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
  ping(): Promise<void>;
  close(): Promise<void>;
}
