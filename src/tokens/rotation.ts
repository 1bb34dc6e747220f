import { and, asc, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db";
import { serverKeys } from "../db/schema";
import { newSigningKeyRow, type SigningKey, signingKeyOf } from "./keys";

/**
 * How long a new signing key is published (in /.well-known/jwks.json, whose answer caches may keep 300 s, and on every
 * instance, which reload keys every KEY_RELOAD_MS) before it signs; the old key signs until then.
 */
export const KEY_PUBLISH_DELAY_S = 600;
export const KEY_RELOAD_MS = 60_000;
/** Arbitrary but fixed, like the migration lock's. */
const ROTATION_LOCK_ID = 7_202_612;

/** A key of the ring: it signs while `retiresAt` is in the future (or unset), and verifies until its tokens expire. */
export type RingKey = SigningKey & { createdAt: Date; retiresAt: Date | null };

/** How long after a key stops signing its last tokens can still be valid. */
export const verifyWindowMs = (config: Config) => (Math.max(config.ACCESS_TOKEN_TTL_S, config.IMPERSONATION_TTL_S) + 60) * 1000;

/** The keys that still verify, oldest first: those never retired, and those retired less than a token's lifetime ago. */
export async function loadKeyRing(db: Db, config: Config, now: Date): Promise<RingKey[]> {
  const rows = await db
    .select()
    .from(serverKeys)
    .where(
      and(
        eq(serverKeys.purpose, "jwt"),
        or(isNull(serverKeys.retiredAt), gt(serverKeys.retiredAt, new Date(now.getTime() - verifyWindowMs(config)))),
      ),
    )
    .orderBy(asc(serverKeys.createdAt), asc(serverKeys.kid));
  return Promise.all(rows.map(async (row) => ({ ...(await signingKeyOf(row)), createdAt: row.createdAt, retiresAt: row.retiredAt })));
}

/** The key that signs at `now`: the oldest one not retired yet (a new key waits its publication delay behind it). */
export function signingKeyAt(ring: RingKey[], now: Date): RingKey | undefined {
  return ring.find((k) => k.retiresAt === null || k.retiresAt > now) ?? ring[ring.length - 1];
}

/**
 * Rotates the JWT signing key without downtime: a new key is published at once and signs KEY_PUBLISH_DELAY_S later,
 * when every key signing now retires; each old key stays in the JWKS until the last token it signed has expired.
 * `olderThanMs`: rotate only when the newest key is at least this old (the schedule, JWT_KEY_ROTATION_DAYS; safe on
 * every instance at once, as rotations take a lock and check again). Answers null when it did not rotate.
 */
export async function rotateSigningKeys(db: Db, opts: { now?: Date; olderThanMs?: number } = {}) {
  const now = opts.now ?? new Date();
  return db.transaction(async (tx) => {
    // One rotation at a time across instances; the check below then sees the key a rotation just made.
    await tx.execute(sql`select pg_advisory_xact_lock(${ROTATION_LOCK_ID})`);
    const live = await tx
      .select({ kid: serverKeys.kid, createdAt: serverKeys.createdAt })
      .from(serverKeys)
      .where(and(eq(serverKeys.purpose, "jwt"), isNull(serverKeys.retiredAt)))
      .orderBy(asc(serverKeys.createdAt));
    const newest = live[live.length - 1];
    if (opts.olderThanMs !== undefined && newest && now.getTime() - newest.createdAt.getTime() < opts.olderThanMs) return null;
    const retiresAt = new Date(now.getTime() + KEY_PUBLISH_DELAY_S * 1000);
    await tx
      .update(serverKeys)
      .set({ retiredAt: retiresAt })
      .where(and(eq(serverKeys.purpose, "jwt"), isNull(serverKeys.retiredAt)));
    const row = await newSigningKeyRow(now);
    await tx.insert(serverKeys).values(row);
    return { kid: row.kid, signsFrom: retiresAt.toISOString(), retired: live.map((k) => k.kid) };
  });
}
