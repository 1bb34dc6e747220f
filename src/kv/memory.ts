import type { KeyValueStore, Subscription } from "./types";

type Entry = { value: string; expiresAt: number };

/** In-process store for one instance (the embedded default). */
export class MemoryStore implements KeyValueStore {
  readonly kind = "memory";
  private readonly entries = new Map<string, Entry>();
  private readonly sets = new Map<string, Map<string, number>>();
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref?.();
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep() {
    const t = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= t) this.entries.delete(key);
    for (const members of this.sets.values()) for (const [m, expiresAt] of members) if (expiresAt <= t) members.delete(m);
  }

  async get(key: string) {
    return this.live(key)?.value ?? null;
  }
  async set(key: string, value: string, ttlS: number) {
    this.entries.set(key, { value, expiresAt: this.now() + ttlS * 1000 });
  }
  async setIfAbsent(key: string, value: string, ttlS: number) {
    if (this.live(key)) return false;
    this.entries.set(key, { value, expiresAt: this.now() + ttlS * 1000 });
    return true;
  }
  async getDel(key: string) {
    const entry = this.live(key);
    this.entries.delete(key);
    return entry?.value ?? null;
  }
  async del(key: string) {
    this.entries.delete(key);
    this.sets.delete(key);
  }
  async incr(key: string, ttlS: number) {
    const entry = this.live(key);
    const t = this.now();
    if (!entry) {
      this.entries.set(key, { value: "1", expiresAt: t + ttlS * 1000 });
      return { count: 1, ttlS };
    }
    entry.value = String(Number(entry.value) + 1);
    return { count: Number(entry.value), ttlS: Math.max(1, Math.ceil((entry.expiresAt - t) / 1000)) };
  }
  async addExpiring(key: string, member: string, ttlS: number) {
    let members = this.sets.get(key);
    if (!members) {
      members = new Map();
      this.sets.set(key, members);
    }
    members.set(member, this.now() + ttlS * 1000);
  }
  async liveMembers(key: string) {
    const t = this.now();
    return [...(this.sets.get(key) ?? [])].filter(([, expiresAt]) => expiresAt > t).map(([m]) => m);
  }
  async expiryOf(key: string, member: string) {
    const expiresAt = this.sets.get(key)?.get(member);
    return expiresAt !== undefined && expiresAt > this.now() ? expiresAt : null;
  }
  /** Delivered synchronously, so every instance sharing this store knows before `publish` returns. */
  async publish(channel: string, message: string) {
    for (const handler of this.channels.get(channel) ?? []) handler(message);
  }
  subscribe(channel: string, onMessage: (message: string) => void, onReady: () => Promise<void> | void): Subscription {
    const handlers = this.channels.get(channel) ?? new Set<(message: string) => void>();
    this.channels.set(channel, handlers);
    handlers.add(onMessage);
    const subscription = { live: false, close: () => void handlers.delete(onMessage) };
    // onReady loads what was missed from the database, which may be down: tried again until it works.
    const sync = () =>
      Promise.resolve()
        .then(onReady)
        .then(
          () => {
            subscription.live = true;
          },
          () => {
            if (handlers.has(onMessage)) setTimeout(sync, 1000).unref?.();
          },
        );
    void sync();
    return subscription;
  }
  async ping() {}
  async close() {
    clearInterval(this.sweeper);
    this.entries.clear();
    this.sets.clear();
    this.channels.clear();
  }
}
