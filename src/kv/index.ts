import { MemoryStore } from "./memory";
import type { KeyValueStore } from "./types";

export type { KeyValueStore, Subscription } from "./types";
export { MemoryStore } from "./memory";

/** Namespaces every key, so several servers (or test apps) can share one Redis. */
export function prefixed(store: KeyValueStore, prefix: string): KeyValueStore {
  if (!prefix) return store;
  const k = (key: string) => `${prefix}${key}`;
  return {
    kind: store.kind,
    get: (key) => store.get(k(key)),
    set: (key, value, ttl) => store.set(k(key), value, ttl),
    setIfAbsent: (key, value, ttl) => store.setIfAbsent(k(key), value, ttl),
    getDel: (key) => store.getDel(k(key)),
    del: (key) => store.del(k(key)),
    incr: (key, ttl) => store.incr(k(key), ttl),
    addExpiring: (key, member, ttl) => store.addExpiring(k(key), member, ttl),
    liveMembers: (key) => store.liveMembers(k(key)),
    expiryOf: (key, member) => store.expiryOf(k(key), member),
    publish: (channel, message) => store.publish(k(channel), message),
    subscribe: (channel, onMessage, onReady) => store.subscribe(k(channel), onMessage, onReady),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}

/** Redis when `url` is set, else the in-memory store; ioredis (~15 MB) is loaded only for Redis. */
export async function openStore(opts: { url?: string; timeoutMs: number; prefix: string; now: () => number }): Promise<KeyValueStore> {
  const base = opts.url ? new (await import("./redis")).RedisStore(opts.url, opts.timeoutMs) : new MemoryStore(opts.now);
  return prefixed(base, opts.prefix);
}
