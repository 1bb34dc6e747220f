import { eq, sql } from "drizzle-orm";
import { sha256 } from "./crypto";
import type { Db } from "./db";
import { sessions } from "./db/schema";
import type { KeyValueStore } from "./kv";
import type { RequestMeta } from "./request";

/**
 * The devices (IP and user agent) each user has signed in from lately, kept in the KV store for as long as a session
 * may live, so that a sign-in from any other one can be told to the account's owner.
 */
export class KnownDevices {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly db: Db,
    private readonly rememberS: number,
  ) {}

  /**
   * Records this sign-in's device; true when it is new to a user who has signed in before (an account's very first
   * sign-in is not news to anyone). Asks the database only for a device it has not seen.
   */
  async isNewFor(userId: string, meta: RequestMeta): Promise<boolean> {
    const device = sha256(`${meta.ip ?? ""}\0${meta.userAgent ?? ""}`);
    if (!(await this.kv.setIfAbsent(`device:${userId}:${device}`, "1", this.rememberS))) return false;
    // The store forgets (an in-memory one at each restart, Redis when flushed): the sessions kept in the database
    // still tell a device seen lately from a new one, so a restart does not make every next sign-in news.
    // As an ISO string: a raw fragment's parameter is not encoded by its column's type.
    const since = new Date(Date.now() - this.rememberS * 1000);
    const [seen] = await this.db
      .select({
        any: sql<boolean>`count(*) > 0`,
        known: sql<boolean>`coalesce(bool_or(${sessions.ip} is not distinct from ${meta.ip} and ${sessions.userAgent} is not distinct from ${meta.userAgent} and ${sessions.createdAt} > ${since.toISOString()}::timestamptz), false)`,
      })
      .from(sessions)
      .where(eq(sessions.userId, userId));
    return Boolean(seen?.any) && !seen?.known;
  }
}
