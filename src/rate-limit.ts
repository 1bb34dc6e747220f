import type { Config } from "./config";
import { errors } from "./errors";
import { ipKey } from "./ip";
import type { KeyValueStore } from "./kv";
import type { Limit } from "./settings-fields";

/**
 * Every named limit: the core's here, each plugin's added from its own folder by declaration merging
 * (`declare module "../../src/rate-limit" { interface RateLimits { RATE_LIMIT_ANONYMOUS_IP: Limit } }`) and declared
 * in its definition's `limits`, so the setting is checked at start with the others.
 */
export interface RateLimits {
  RATE_LIMIT_LOGIN_IP: Limit;
  RATE_LIMIT_LOGIN_EMAIL: Limit;
  RATE_LIMIT_CODE_EMAIL: Limit;
  /** Counted on the session's row by the rotation itself (src/sessions/queries.ts `refreshWindow`), not here. */
  RATE_LIMIT_REFRESH_SESSION: Limit;
  RATE_LIMIT_SIGNUP_IP: Limit;
  RATE_LIMIT_MAIL_IP: Limit;
  RATE_LIMIT_MAIL_RECIPIENT: Limit;
}

export type LimitName = keyof RateLimits;

export type { Limit };

/** The KV key of a limit's counter. A limit named `*_IP` counts clients, so its subject is normalised by `ipKey`. */
const counterKey = (name: string, subject: string) => `rl:${name}:${name.endsWith("_IP") ? ipKey(subject) : subject}`;

/** Fixed-window limits over the KV port, so every instance shares one count. */
export class RateLimiter {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly config: Config,
  ) {}

  /** Counts one hit against `name` for `subject`; throws 429 with Retry-After once over the limit. */
  async hit(name: LimitName | (string & {}), subject: string, limit?: Limit): Promise<void> {
    const { count, windowS } = limit ?? ((this.config as unknown as Record<string, Limit>)[name] as Limit);
    const result = await this.kv.incr(counterKey(name, subject), windowS);
    if (result.count > count) throw errors.rateLimited(result.ttlS);
  }

  /**
   * Counts one hit like `hit`, but answers instead of throwing: `over` once past the limit, and how many hits are
   * `remaining` in the window after this one (0 on the hit that uses it up: a caller can act once on it).
   */
  async count(name: LimitName, subject: string): Promise<{ over: boolean; remaining: number; retryAfterS: number }> {
    const { count, windowS } = (this.config as unknown as Record<string, Limit>)[name] as Limit;
    const result = await this.kv.incr(counterKey(name, subject), windowS);
    return { over: result.count > count, remaining: Math.max(0, count - result.count), retryAfterS: result.ttlS };
  }

  /** Forgets the hits against `name` for `subject`, e.g. once the owner proved themselves another way. */
  async clear(name: LimitName | (string & {}), subject: string): Promise<void> {
    await this.kv.del(counterKey(name, subject));
  }
}
