import Redis from "ioredis";
import { UnavailableError } from "../errors";
import type { KeyValueStore } from "./types";

const INCR_WITH_TTL = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('TTL', KEYS[1])
if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {n, t}`;

/** Redis behind the port; a command fails fast (503) instead of queueing while Redis is down. */
export class RedisStore implements KeyValueStore {
  readonly kind = "redis";
  readonly client: Redis;

  constructor(url: string, timeoutMs: number) {
    this.client = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    // Errors surface per command as 503; the connection event would only repeat them.
    this.client.on("error", () => {});
    this.client.defineCommand("incrWithTtl", { numberOfKeys: 1, lua: INCR_WITH_TTL });
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
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
  async ping() {
    await this.run(() => this.client.ping());
  }
  async close() {
    this.client.disconnect();
  }
}
