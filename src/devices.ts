import { and, eq, gt, sql } from "drizzle-orm";
import { sha256 } from "./crypto";
import type { Db } from "./db";
import { sessions, type UserRow } from "./db/schema";
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
    private readonly now: () => Date,
  ) {}

  /**
   * Records this sign-in's device; true when it is new to a user who has signed in before (an account's very first
   * sign-in is not news to anyone). Asks the database only for a device the store has not seen: the store forgets (an
   * in-memory one at each restart, Redis when flushed), and the sessions kept in the database still tell a device
   * used lately from a new one, so a restart does not make every next sign-in news. `madeNow`: the sign-in of a
   * sign-up (SignInOptions.madeNow).
   */
  async isNewFor(user: Pick<UserRow, "id" | "lastSignInAt">, meta: RequestMeta, madeNow = false): Promise<boolean> {
    const device = sha256(`${meta.ip ?? ""}\0${meta.userAgent ?? ""}`);
    if (!(await this.kv.setIfAbsent(`device:${user.id}:${device}`, "1", this.rememberS))) return false;
    // An account this very request made has signed in nowhere before: its device is recorded, and no news.
    if (madeNow) return false;
    // Whether the account signed in before: its last sign-in, or (for sessions made without one, by an invitation or
    // the library) any session of it. Not the sessions alone: retention deletes sessions that ended.
    if (user.lastSignInAt === null && !(await this.hasAnySession(user.id))) return false;
    const since = new Date(this.now().getTime() - this.rememberS * 1000);
    const seen = await this.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(
        and(
          eq(sessions.userId, user.id),
          sql`${sessions.ip} is not distinct from ${meta.ip ?? null}`,
          sql`${sessions.userAgent} is not distinct from ${meta.userAgent ?? null}`,
          // Through the column, so the time is encoded as the column is (a raw Date parameter breaks postgres-js).
          gt(sessions.lastUsedAt, since),
        ),
      )
      .limit(1);
    return seen.length === 0;
  }

  private async hasAnySession(userId: string): Promise<boolean> {
    const [any] = await this.db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, userId)).limit(1);
    return any !== undefined;
  }
}
