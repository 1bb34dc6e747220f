import Redis from "ioredis";
import { UnavailableError } from "../errors";
import type { KeyValueStore, Subscription } from "./types";

const INCR_WITH_TTL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('TTL', KEYS[1])
if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {n, t}`;

const TIMED_OUT = /timed out/i;

/**
 * A connection that connected but did not become ready (its handshake unanswered: the network went silent) within
 * `timeoutMs` is dropped and made again, as ioredis bounds only the TCP connect.
 */
function dropWhenNotReady(client: Redis, timeoutMs: number): void {
  client.on("connect", () => {
    const timer = setTimeout(() => {
      if (client.status === "connect") client.disconnect(true);
    }, timeoutMs);
    client.once("ready", () => clearTimeout(timer));
    client.once("close", () => clearTimeout(timer));
  });
}

/** Redis behind the port; a command fails fast (503) instead of queueing while Redis is down. */
export class RedisStore implements KeyValueStore {
  readonly kind = "redis";
  readonly client: Redis;
  private readonly subscribers = new Set<Redis>();

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    this.client = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      keepAlive: timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      // Commands issued in the same tick (concurrent requests) go out in one write: fewer syscalls under load.
      enableAutoPipelining: true,
    });
    // Errors surface per command as 503; the connection event would only repeat them.
    this.client.on("error", () => {});
    dropWhenNotReady(this.client, timeoutMs);
    this.client.defineCommand("incrWithTtl", { numberOfKeys: 1, lua: INCR_WITH_TTL });
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      // A command unanswered for the whole deadline: the connection is silent. Replies that come late (or never) must
      // not be matched to later commands, so the connection is dropped and made again.
      if (error instanceof Error && TIMED_OUT.test(error.message) && this.client.status === "ready") this.client.disconnect(true);
      throw Object.assign(new UnavailableError("kv"), { cause: error });
    }
  }

  get(key: string) {
    return this.run(() => this.client.get(key));
  }
  async set(key: string, value: string, ttlS: number) {
    await this.run(() => this.client.set(key, value, "EX", Math.max(1, Math.ceil(ttlS))));
  }
  async setIfAbsent(key: string, value: string, ttlS: number) {
    const r = await this.run(() => this.client.set(key, value, "EX", Math.max(1, Math.ceil(ttlS)), "NX"));
    return r === "OK";
  }
  getDel(key: string) {
    return this.run(() => this.client.getdel(key));
  }
  async del(key: string) {
    await this.run(() => this.client.del(key));
  }
  async incr(key: string, ttlS: number) {
    const [count, ttl] = await this.run(
      () => (this.client as unknown as { incrWithTtl(k: string, t: number): Promise<[number, number]> }).incrWithTtl(key, Math.max(1, Math.ceil(ttlS))),
    );
    return { count, ttlS: ttl };
  }
  async addExpiring(key: string, member: string, ttlS: number) {
    const t = Date.now();
    const ttlMs = Math.max(1, Math.ceil(ttlS)) * 1000;
    await this.run(() =>
      this.client
        .multi()
        .zadd(key, t + ttlMs, member)
        .zremrangebyscore(key, "-inf", t)
        .pexpire(key, ttlMs, "GT")
        .pexpire(key, ttlMs, "NX")
        .exec(),
    );
  }
  liveMembers(key: string) {
    return this.run(() => this.client.zrangebyscore(key, `(${Date.now()}`, "+inf"));
  }
  async expiryOf(key: string, member: string) {
    const score = await this.run(() => this.client.zscore(key, member));
    return score !== null && Number(score) > Date.now() ? Number(score) : null;
  }
  async publish(channel: string, message: string) {
    await this.run(() => this.client.publish(channel, message));
  }
  subscribe(channel: string, onMessage: (message: string) => void, onReady: () => Promise<void> | void): Subscription {
    // A subscribed connection can run nothing else, so each subscription has its own; it queues while reconnecting,
    // and has nothing to pipeline.
    const subscriber = this.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false, enableAutoPipelining: false });
    this.subscribers.add(subscriber);
    dropWhenNotReady(subscriber, this.timeoutMs);
    // A subscribed connection only receives, so silence on it looks like a quiet channel: a ping every half deadline
    // proves it still hears; one left unanswered for the deadline drops it (the subscription is down until resync).
    const heartbeat = setInterval(() => {
      if (subscriber.status !== "ready" || !subscription.live) return;
      const unanswered = setTimeout(() => markDown(true), this.timeoutMs);
      subscriber.ping().then(
        () => clearTimeout(unanswered),
        () => {},
      );
    }, Math.max(50, Math.floor(this.timeoutMs / 2)));
    heartbeat.unref?.();
    const subscription = {
      live: false,
      close: () => {
        clearInterval(heartbeat);
        this.subscribers.delete(subscriber);
        subscriber.disconnect();
      },
    };
    const markDown = (reconnect: boolean) => {
      subscription.live = false;
      if (reconnect && subscriber.status === "ready") subscriber.disconnect(true);
    };
    subscriber.on("error", () => {});
    subscriber.on("close", () => markDown(false));
    subscriber.on("message", (ch: string, message: string) => {
      if (ch === channel) onMessage(message);
    });
    // Resync only once the channel is subscribed again, so nothing published in between is lost.
    subscriber.on("ready", () => {
      subscriber
        .subscribe(channel)
        .then(() => onReady())
        .then(
          () => {
            subscription.live = subscriber.status === "ready";
          },
          () => subscriber.disconnect(true),
        );
    });
    return subscription;
  }
  async ping() {
    await this.run(() => this.client.ping());
  }
  async close() {
    for (const subscriber of this.subscribers) subscriber.disconnect();
    this.subscribers.clear();
    this.client.disconnect();
  }
}
