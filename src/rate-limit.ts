import type { Config } from "./config";
import { errors } from "./errors";
import type { KeyValueStore } from "./kv";

export type LimitName =
  | "RATE_LIMIT_LOGIN_IP"
  | "RATE_LIMIT_LOGIN_EMAIL"
  | "RATE_LIMIT_CODE_EMAIL"
  | "RATE_LIMIT_EMAIL_CHECK_IP"
  | "RATE_LIMIT_REFRESH_SESSION"
  | "RATE_LIMIT_ANONYMOUS_IP"
  | "RATE_LIMIT_SIGNUP_IP"
  | "RATE_LIMIT_MAIL_IP"
  | "RATE_LIMIT_MAIL_RECIPIENT";

export type Limit = { count: number; windowS: number };

/** Fixed-window limits over the KV port, so every instance shares one count. */
export class RateLimiter {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly config: Config,
  ) {}

  /** Counts one hit against `name` for `subject`; throws 429 with Retry-After once over the limit. */
  async hit(name: LimitName | (string & {}), subject: string, limit?: Limit): Promise<void> {
    const { count, windowS } = limit ?? (this.config[name as LimitName] as Limit);
    const result = await this.kv.incr(`rl:${name}:${subject}`, windowS);
    if (result.count > count) throw errors.rateLimited(result.ttlS);
  }

  /** Forgets the hits against `name` for `subject`, e.g. once the owner proved themselves another way. */
  async clear(name: LimitName | (string & {}), subject: string): Promise<void> {
    await this.kv.del(`rl:${name}:${subject}`);
  }
}
