import { and, eq, sql } from "drizzle-orm";
import type { AuditLog } from "../audit";
import type { Clock } from "../clock";
import type { Config } from "../config";
import { decrypt, encrypt, keyFromSecret, randomToken, sha256 } from "../crypto";
import type { Db } from "../db";
import { type SessionRow, sessions, users } from "../db/schema";
import { Batcher } from "../batch";
import { coreError, errors, lostRace } from "../errors";
import type { RequestMeta } from "../request";
import type { TeamClaim } from "../tokens/access";
import type { ServerSecrets } from "../tokens/keys";
import { type PublicUserRow, publicUserColumns, type Users } from "../users";
import { type prepareQueries, presentedGeneration, refreshWindow, teamOf } from "./queries";
import { formatRefreshToken, parseRefreshToken, type RefreshToken } from "./refresh-token";

/** What an access token says of its session. */
export type SessionClaims = { sid: string; amr: string[]; team?: TeamClaim; authTime: Date };

export const claimsOf = (session: Pick<SessionRow, "id" | "amr" | "teamId" | "teamRole" | "authTime">): SessionClaims => ({
  sid: session.id,
  amr: session.amr,
  team: teamOf(session),
  authTime: session.authTime,
});

/**
 * The app's extra claims for an access token of this session (the `accessTokenClaims` hook, over the rows); given only
 * when a hook is configured. It may throw: whoever calls it does so before anything it would answer is written.
 */
export type ExtraClaimsOf = (user: PublicUserRow, session: Pick<SessionRow, "id" | "amr" | "ip" | "userAgent">) => Promise<Record<string, unknown> | undefined>;

/** What the claims hook is asked about, read before a write: a session as hooks see it, and its user. */
export const hookSubjectColumns = {
  session: { id: sessions.id, amr: sessions.amr, ip: sessions.ip, userAgent: sessions.userAgent },
  user: publicUserColumns,
};

/** One presentation to rotate, as the batched update reads it (times as ISO strings). */
type RotationInput = {
  sid: string;
  gen: number;
  hash: string;
  now: string;
  idle_cutoff: string;
  next_hash: string;
  next_expires_at: string;
  sealed_next: string | null;
  /** RATE_LIMIT_REFRESH_SESSION: now minus its window (a window that began after it is open), and its count. */
  window_cutoff: string;
  max_hits: number;
};
type RotatedRow = Awaited<ReturnType<ReturnType<typeof prepareQueries>["rotate"]["execute"]>>[number];

/** A refresh that went through: the new refresh token, and what the access token that goes with it says. */
export type Rotated = { user: PublicUserRow; claims: SessionClaims; refreshToken: string; issuedAt: Date; extra?: Record<string, unknown> };

const invalidRefresh = () => coreError("INVALID_REFRESH_TOKEN");
/** The key a successor's secret is sealed with: only the holder of the token it replaced can open it. */
const sealingKeyOf = (secret: string) => keyFromSecret(secret, "refresh-successor");

/**
 * The session a presented token is live for, with its user: what the claims hook is asked about before a rotation.
 * One over the refresh limit is not asked about: it goes to `refused`, which answers 429.
 */
const prepareLiveSession = (db: Db) =>
  db
    .select(hookSubjectColumns)
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(...presentedGeneration(), refreshWindow.room(sql.placeholder("cutoff"), sql.placeholder("max"))))
    .limit(1)
    .prepare("sessions_refresh_live");

/**
 * Counts a presentation that did not rotate against its session's refresh limit, and reads the session as it is; no
 * row when the session is gone or over the limit (which then costs a read, not a write: a holder of one of the
 * session's tokens cannot make it write more than the limit allows).
 */
const prepareCountRefused = (db: Db) => {
  const cutoff = sql`${sql.placeholder("cutoff")}::timestamptz`;
  return db
    .update(sessions)
    .set(refreshWindow.count(cutoff, sql`${sql.placeholder("now")}::timestamptz`))
    .where(and(eq(sessions.id, sql.placeholder("sid")), refreshWindow.room(cutoff, sql.placeholder("max"))))
    .returning()
    .prepare("sessions_refresh_refused");
};

/**
 * Each session's chain of refresh tokens: one live generation, rotated by one update (batched with the others in
 * flight); the generation just replaced is answered again within the grace window (concurrent tabs); an older one
 * coming back is theft.
 */
export class RefreshChains {
  private readonly liveSession: ReturnType<typeof prepareLiveSession>;
  private readonly countRefused: ReturnType<typeof prepareCountRefused>;
  /** Rotations that arrive while one is in flight gather, and go together as one statement (one commit). */
  private readonly rotations = new Batcher<RotationInput, RotatedRow | undefined>((batch) => this.rotateBatch(batch), {
    // A deadlock is this batch's alone (its calls are retried one by one); anything else is Postgres failing.
    failsWaiting: (error) => !lostRace(error),
  });

  constructor(
    private readonly deps: {
      db: Db;
      queries: ReturnType<typeof prepareQueries>;
      config: Config;
      secrets: ServerSecrets;
      users: Users;
      audit: AuditLog;
      clock: Clock;
      /** Ends a session whose chain was broken (theft) or that went idle. */
      revoke(sessionId: string, reason: string): Promise<void>;
    },
  ) {
    this.liveSession = prepareLiveSession(deps.db);
    this.countRefused = prepareCountRefused(deps.db);
  }

  /** The token of a chain's generation. */
  async format(token: RefreshToken): Promise<string> {
    return formatRefreshToken(await this.key(), token);
  }

  /** The session columns that make `secret` the live refresh token, issued at `now`. */
  link(secret: string, now: Date, sealedNext: string | null = null) {
    return {
      refreshHash: sha256(secret),
      refreshIssuedAt: now,
      refreshExpiresAt: new Date(now.getTime() + this.deps.config.REFRESH_TOKEN_TTL_S * 1000),
      refreshSealedNext: sealedNext,
    };
  }

  /**
   * Rotates a presented refresh token; throws INVALID_REFRESH_TOKEN or REFRESH_TOKEN_REUSED when it may not. With
   * `extraClaimsOf`, the claims are made before the rotation commits, so a hook that throws leaves the presented token
   * live, to be presented again at any time; without, the rotation is the one prepared update.
   */
  async rotate(refreshToken: string, meta: RequestMeta, extraClaimsOf?: ExtraClaimsOf): Promise<Rotated> {
    const { config, clock } = this.deps;
    const presented = parseRefreshToken(await this.key(), refreshToken);
    if (!presented) throw invalidRefresh();
    // The tag proves the server issued this token for this session, so nobody else can spend the session's limit.
    // Every presentation with a valid tag counts against it, on the session's row: a rotation in its own update, any
    // other in `refused`.
    let extra: Record<string, unknown> | undefined;
    if (extraClaimsOf) {
      const [live] = await this.liveSession.execute({
        sid: presented.sessionId,
        gen: presented.gen,
        hash: sha256(presented.secret),
        ...this.refreshLimit(clock.now()),
      });
      // Not the live token of a live session: it cannot rotate, whatever the hook says.
      if (!live) return this.refused(presented, meta, extraClaimsOf);
      extra = await extraClaimsOf(live.user, live.session);
    }
    const now = clock.now();
    const successor = randomToken(32);
    const link = this.link(successor, now, encrypt(sealingKeyOf(presented.secret), successor));
    const limit = this.refreshLimit(now);
    const presentation: RotationInput = {
      sid: presented.sessionId,
      gen: presented.gen,
      hash: sha256(presented.secret),
      now: now.toISOString(),
      idle_cutoff: new Date(now.getTime() - config.SESSION_IDLE_TIMEOUT_S * 1000).toISOString(),
      next_hash: link.refreshHash,
      next_expires_at: link.refreshExpiresAt.toISOString(),
      sealed_next: link.refreshSealedNext,
      window_cutoff: limit.cutoff,
      max_hits: limit.max,
    };
    let rotated: RotatedRow | undefined;
    try {
      rotated = await this.rotations.add(presentation);
    } catch (error) {
      // A batch locks several rows, so it can deadlock with another change of two of them; alone, this one cannot.
      if (!lostRace(error)) throw error;
      [rotated] = await this.rotateBatch([presentation]);
    }
    if (!rotated) return this.refused(presented, meta, extraClaimsOf);
    const { session, user } = rotated;
    const token = await this.format({ sessionId: session.id, gen: session.refreshGen, secret: successor });
    return { user, claims: claimsOf(session), refreshToken: token, issuedAt: now, extra };
  }

  /**
   * Answers a presented token that did not rotate: an ended session, a replay within the grace window, or theft. A
   * replay writes nothing but its count against the refresh limit, so a claims hook that throws on it leaves the
   * successor pair to be reissued again.
   */
  private async refused(presented: RefreshToken, meta: RequestMeta, extraClaimsOf?: ExtraClaimsOf): Promise<Rotated> {
    const { db, config, clock } = this.deps;
    const now = clock.now();
    const [session] = await this.countRefused.execute({ sid: presented.sessionId, now: now.toISOString(), ...this.refreshLimit(now) });
    if (!session) {
      const [limited] = await db.select({ windowAt: sessions.refreshWindowAt }).from(sessions).where(eq(sessions.id, presented.sessionId));
      const windowMs = config.RATE_LIMIT_REFRESH_SESSION.windowS * 1000;
      if (limited?.windowAt) throw errors.rateLimited((limited.windowAt.getTime() + windowMs - now.getTime()) / 1000);
    }
    if (!session || session.revokedAt || session.expiresAt <= now) throw invalidRefresh();
    if (now.getTime() - session.lastUsedAt.getTime() > config.SESSION_IDLE_TIMEOUT_S * 1000) {
      await this.deps.revoke(session.id, "idle_timeout");
      throw invalidRefresh();
    }
    // The live generation (expired), or one the session never reached: nothing was rotated, nothing to replay.
    if (presented.gen >= session.refreshGen) throw invalidRefresh();

    const withinGrace = now.getTime() - session.refreshIssuedAt.getTime() <= config.REFRESH_REUSE_GRACE_S * 1000;
    if (presented.gen === session.refreshGen - 1 && withinGrace) {
      // The token just rotated (another tab won the race): answer its successor pair, issued again byte for byte.
      // Only the presented secret opens the seal; none is kept after a reissue (the pair went to someone else).
      if (!session.refreshSealedNext) throw invalidRefresh();
      let successor: string;
      try {
        successor = decrypt(sealingKeyOf(presented.secret), session.refreshSealedNext);
      } catch {
        throw invalidRefresh();
      }
      const user = await this.deps.users.findById(session.userId);
      if (!user) throw invalidRefresh();
      const token = await this.format({ sessionId: session.id, gen: session.refreshGen, secret: successor });
      const extra = await extraClaimsOf?.(user, session);
      return { user, claims: claimsOf(session), refreshToken: token, issuedAt: session.refreshIssuedAt, extra };
    }
    // An older generation of this session's own chain (the tag says so) came back after its successor was used: one
    // of the two holders is a thief, and which one cannot be told, so the session ends for both.
    await this.deps.revoke(session.id, "refresh_token_reused");
    await this.deps.audit.record({ type: "refresh_reuse", userId: session.userId, meta, data: { sessionId: session.id } });
    throw coreError("REFRESH_TOKEN_REUSED");
  }

  /** RATE_LIMIT_REFRESH_SESSION at `now`: its window is open if it began after `cutoff`, and holds `max`. */
  private refreshLimit(now: Date): { cutoff: string; max: number } {
    const { count, windowS } = this.deps.config.RATE_LIMIT_REFRESH_SESSION;
    return { cutoff: new Date(now.getTime() - windowS * 1000).toISOString(), max: count };
  }

  /** Rotates a batch of presentations in one statement: each one's row, or undefined for one that did not rotate. */
  private async rotateBatch(batch: RotationInput[]): Promise<Array<RotatedRow | undefined>> {
    // Sorted by session id, so that two batches sharing rows usually lock them in the same order.
    const indexed = batch.map((presentation, i) => ({ ...presentation, i })).sort((a, b) => (a.sid < b.sid ? -1 : a.sid > b.sid ? 1 : a.i - b.i));
    const rows = await this.deps.queries.rotate.execute({ batch: JSON.stringify(indexed) });
    const answers: Array<RotatedRow | undefined> = new Array(batch.length);
    for (const row of rows) answers[row.i] = row;
    return answers;
  }

  private key(): Promise<Buffer> {
    return this.deps.secrets.get("refresh-token");
  }
}
