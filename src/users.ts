import { domainToASCII, domainToUnicode } from "node:url";
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { Config } from "./config";
import { newId } from "./crypto";
import type { Db } from "./db";
import { sessions, type UserRow, users } from "./db/schema";
import { type AuthError, coreError, errors } from "./errors";
import type { Events } from "./events";

export type PublicUser = {
  id: string;
  email: string | null;
  emailVerified: boolean;
  username: string | null;
  firstName: string | null;
  lastName: string | null;
  image: string | null;
  roles: string[];
  isAnonymous: boolean;
  mfaEnabled: boolean;
  createdAt: string;
};

/** The columns a PublicUser (and the roles of an access token) is made from: no password hash, no bookkeeping. */
export const publicUserColumns = {
  id: users.id,
  email: users.email,
  emailVerified: users.emailVerified,
  username: users.username,
  firstName: users.firstName,
  lastName: users.lastName,
  image: users.image,
  roles: users.roles,
  isAnonymous: users.isAnonymous,
  mfaEnabled: users.mfaEnabled,
  createdAt: users.createdAt,
};
export type PublicUserRow = Pick<UserRow, keyof typeof publicUserColumns>;

const EMAIL_MAX = 254;
/**
 * One local part and one domain, no quotes, no spaces or separators that could smuggle a second address. Beyond
 * ASCII (RFC 6531), letters, marks and digits only: no invisible, control or direction characters.
 */
const LOCAL_SHAPE = /^[a-z0-9.!#$%&'*+/=?^_`{|}~\p{L}\p{M}\p{N}-]+$/u;
const DOMAIN_CHARS = /^[a-z0-9.\p{L}\p{M}\p{N}-]+$/u;
/** Latin mixed with Cyrillic or Greek in one part is how look-alikes (`jоhn` with a Cyrillic `о`) are made. */
const LATIN = /\p{sc=Latin}/u;
const CYRILLIC = /\p{sc=Cyrillic}/u;
const GREEK = /\p{sc=Greek}/u;
const mixesLookAlikes = (part: string) => [LATIN, CYRILLIC, GREEK].filter((script) => script.test(part)).length > 1;
/** The domain in ASCII (IDNA A-labels): at least two labels of letters, digits and inner hyphens. */
const ASCII_DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * The one canonical form of an email (trim, NFC, lower-case, and an internationalised domain in Unicode whether
 * it came as `bücher.de` or as `xn--bcher-kva.de`), or null when it is not one plain address.
 */
export function canonicalEmail(raw: unknown): string | null {
  if (typeof raw !== "string") return null;
  const email = raw.trim().normalize("NFC").toLowerCase();
  if (email.length === 0 || email.length > EMAIL_MAX) return null;
  const at = email.indexOf("@");
  if (at !== email.lastIndexOf("@")) return null;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (!LOCAL_SHAPE.test(local) || local.includes("..") || local.startsWith(".") || local.endsWith(".")) return null;
  if (!DOMAIN_CHARS.test(domain)) return null;
  if (mixesLookAlikes(local) || domain.split(".").some(mixesLookAlikes)) return null;
  const ascii = domainToASCII(domain);
  if (ascii.length > 253 || !ASCII_DOMAIN.test(ascii)) return null;
  return `${local}@${domainToUnicode(ascii)}`;
}

/** Parses an email from input or throws 400 VALIDATION_ERROR naming the field. */
export function requireEmail(raw: unknown, field = "email"): string {
  const email = canonicalEmail(raw);
  if (!email) throw errors.validation([{ path: field, message: "must be a single valid email address" }]);
  return email;
}

function prepareQueries(db: Db) {
  return {
    byId: db.select().from(users).where(eq(users.id, sql.placeholder("id"))).limit(1).prepare("users_by_id"),
    byEmail: db.select().from(users).where(eq(users.email, sql.placeholder("email"))).limit(1).prepare("users_by_email"),
    /** The time is an ISO string: a placeholder skips the column's encoding. */
    signedIn: db
      .update(users)
      .set({ lastSignInAt: sql`${sql.placeholder("now")}` })
      .where(eq(users.id, sql.placeholder("id")))
      .returning({ banned: users.banned, bannedUntil: users.bannedUntil, passwordHash: users.passwordHash })
      .prepare("users_signed_in"),
  };
}

export class Users {
  private readonly adminEmails: Set<string>;
  /** The lookups of every sign-in, built once; a query passed another handle (a transaction) is built as usual. */
  private readonly queries: ReturnType<typeof prepareQueries>;

  constructor(
    private readonly db: Db,
    config: Config,
    private readonly events: Events,
  ) {
    this.adminEmails = new Set(config.ADMIN_EMAILS.map(canonicalEmail).filter((e): e is string => e !== null));
    this.queries = prepareQueries(db);
  }

  /** Stored roles plus `admin` for ADMIN_EMAILS. */
  rolesOf(row: Pick<UserRow, "roles" | "email" | "emailVerified">): string[] {
    const roles = [...row.roles];
    if (row.email && row.emailVerified && this.adminEmails.has(row.email) && !roles.includes("admin")) {
      roles.push("admin");
    }
    return roles;
  }

  /**
   * Whether the user is an admin, or becomes one by proving the email: a dashboard code request asks this, since
   * the code it mails is that proof (an unproven ADMIN_EMAILS address never carries the role by itself).
   */
  isAdminOnceProven(row: Pick<UserRow, "roles" | "email">): boolean {
    return this.rolesOf({ ...row, emailVerified: true }).includes("admin");
  }

  /** Whether a ban holds at `now`: one with an end lifts by itself once that end has passed. */
  isBanned(row: Pick<UserRow, "banned" | "bannedUntil">, now: Date): boolean {
    return row.banned && (row.bannedUntil === null || row.bannedUntil > now);
  }

  /**
   * A `before` step for `delete` that keeps a banned account: the deletion is refused with `KeptBanned` when the locked
   * row carries a ban (in force or not, it is an admin's decision, and deleting it would free its address).
   */
  keepIfBanned(userId: string): (tx: Db) => Promise<void> {
    return async (tx) => {
      const [row] = await tx.select({ banned: users.banned }).from(users).where(eq(users.id, userId));
      if (row?.banned) throw new KeptBanned(userId);
    };
  }

  /**
   * Records a sign-in and answers whether the user is banned now, and the password hash it holds now. Run once the
   * new session's row exists: a ban (or a password change) locks the user row, so it either committed before this
   * update (which then sees it) or revokes that session.
   */
  async markSignedIn(userId: string, now: Date): Promise<{ banned: boolean; passwordHash: string | null }> {
    const [row] = await this.queries.signedIn.execute({ id: userId, now: now.toISOString() });
    return { banned: row ? this.isBanned(row, now) : false, passwordHash: row?.passwordHash ?? null };
  }

  toPublic(row: PublicUserRow): PublicUser {
    return {
      id: row.id,
      email: row.email,
      emailVerified: row.emailVerified,
      username: row.username,
      firstName: row.firstName,
      lastName: row.lastName,
      image: row.image,
      roles: this.rolesOf(row),
      isAnonymous: row.isAnonymous,
      mfaEnabled: row.mfaEnabled,
      createdAt: row.createdAt.toISOString(),
    };
  }

  async findById(id: string, db: Db = this.db): Promise<UserRow | undefined> {
    const [row] = db === this.db ? await this.queries.byId.execute({ id }) : await db.select().from(users).where(eq(users.id, id)).limit(1);
    return row;
  }

  async findByEmail(email: string, db: Db = this.db): Promise<UserRow | undefined> {
    const [row] =
      db === this.db ? await this.queries.byEmail.execute({ email }) : await db.select().from(users).where(eq(users.email, email)).limit(1);
    return row;
  }

  async findByUsername(username: string, db: Db = this.db): Promise<UserRow | undefined> {
    const [row] = await db
      .select()
      .from(users)
      .where(sql`lower(${users.username}) = ${username.toLowerCase()}`)
      .limit(1);
    return row;
  }

  /** Inserts a user; a taken email or username becomes 409. */
  async create(fields: Partial<typeof users.$inferInsert>, db: Db = this.db): Promise<UserRow> {
    try {
      const [row] = await db
        .insert(users)
        .values({ id: newId(), ...fields })
        .returning();
      if (!row) throw new Error("insert returned nothing");
      return row;
    } catch (error) {
      throw uniqueViolation(error) ?? error;
    }
  }

  /** Updates a user; a taken email or username becomes 409. */
  async update(id: string, fields: Partial<typeof users.$inferInsert>, db: Db = this.db): Promise<UserRow> {
    const row = await this.updateWhere(id, undefined, fields, db);
    if (!row) throw errors.notFound("User not found");
    return row;
  }

  /** One UPDATE of user `id` (and `condition`), telling listeners; undefined when no row matched. */
  private async updateWhere(id: string, condition: SQL | undefined, fields: Partial<typeof users.$inferInsert>, db: Db) {
    try {
      const [row] = await db
        .update(users)
        .set({ ...fields, updatedAt: new Date() })
        .where(and(eq(users.id, id), condition))
        .returning();
      if (row) this.changed(id);
      return row;
    } catch (error) {
      throw uniqueViolation(error) ?? error;
    }
  }

  /**
   * Turns a guest into a full account in place: same id, so everything attached to it stays.
   * 409 when the email already belongs to another account; both stay intact.
   */
  async upgradeGuest(guestId: string, fields: Partial<typeof users.$inferInsert>, db: Db = this.db): Promise<UserRow> {
    // The condition makes two concurrent upgrades of one guest safe: only the first still finds a guest.
    const row = await this.updateWhere(guestId, eq(users.isAnonymous, true), { ...fields, isAnonymous: false }, db);
    if (!row) throw coreError("NOT_ANONYMOUS");
    return row;
  }

  /**
   * Deletes the user and, by cascade, everything of theirs; answers the ids of the live sessions that went with it,
   * which `inTransaction` gets too, inside the deletion's transaction (Sessions.deleteUser records their revocations
   * there, and announces them once it commits; those revoked earlier were announced then). The row is locked first, so a
   * sign-in racing this either made its session before (and it is in the answer) or finds no user to make one for
   * (the insert breaks its foreign key). `before` runs once the row is locked and may refuse the deletion by throwing
   * (the admin API's last-admin rule counts the admins left there); nothing is deleted then.
   */
  async delete(
    id: string,
    inTransaction?: (tx: Db, endedSessionIds: string[]) => Promise<void>,
    before?: (tx: Db) => Promise<void>,
  ): Promise<string[]> {
    const ended = await this.db.transaction(async (txn) => {
      const tx = txn as unknown as Db;
      const [user] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.id, id)).for("update");
      await before?.(tx);
      const gone = await tx.delete(sessions).where(eq(sessions.userId, id)).returning({ id: sessions.id, revokedAt: sessions.revokedAt });
      await tx.delete(users).where(eq(users.id, id));
      const live = gone.filter((s) => s.revokedAt === null).map((s) => s.id);
      if (user) {
        await this.events.emit(
          tx,
          ...live.map((sessionId) => ({ type: "session.revoked" as const, data: { userId: id, sessionId, reason: "account_deleted" } })),
          { type: "user.deleted", data: { user } },
        );
      }
      await inTransaction?.(tx, live);
      return live;
    });
    this.changed(id);
    return ended;
  }

  private readonly changeListeners: Array<(userId: string) => void> = [];

  /** Runs `listener` with a user's id after the user changed or was deleted here (e.g. to drop cached copies). */
  onChange(listener: (userId: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(userId: string): void {
    for (const listener of this.changeListeners) listener(userId);
  }
}

/** Thrown by `keepIfBanned`'s step: the account was not deleted because an admin banned it. */
export class KeptBanned extends Error {
  constructor(readonly userId: string) {
    super("account kept: it is banned");
  }
}

export const usernameTaken = () => coreError("USERNAME_TAKEN");

/** Maps a Postgres unique violation on users to the contract's 409. */
export function uniqueViolation(error: unknown): AuthError | undefined {
  const name = violatedUniqueConstraint(error);
  if (name === undefined) return undefined;
  if (name.includes("username")) return usernameTaken();
  if (name.includes("users_email")) return coreError("EMAIL_TAKEN");
  return coreError("CONFLICT");
}

/** The name (and message) of the constraint of this SQLSTATE class a failed write broke, through the driver's wrapping. */
function violatedConstraint(error: unknown, sqlState: string): string | undefined {
  let e = error as { code?: string; constraint_name?: string; constraint?: string; cause?: unknown; message?: string } | undefined;
  for (let i = 0; e && i < 4; i++) {
    if (e.code === sqlState) return `${e.constraint_name ?? e.constraint ?? ""} ${e.message ?? ""}`;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** The unique constraint a failed write broke (23505); else undefined. */
export const violatedUniqueConstraint = (error: unknown) => violatedConstraint(error, "23505");
/** The foreign key a failed write broke (23503), e.g. a row for a user deleted meanwhile; else undefined. */
export const violatedForeignKey = (error: unknown) => violatedConstraint(error, "23503");
