import { type SQL, sql } from "drizzle-orm";
import { bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey(),
    email: text("email"),
    emailVerified: boolean("email_verified").notNull().default(false),
    username: text("username"),
    firstName: text("first_name"),
    lastName: text("last_name"),
    image: text("image"),
    roles: text("roles").array().notNull().default(sql`ARRAY['user']::text[]`),
    isAnonymous: boolean("is_anonymous").notNull().default(false),
    passwordHash: text("password_hash"),
    mfaEnabled: boolean("mfa_enabled").notNull().default(false),
    /** A ban holds while `banned` is set and `banned_until` (none: forever) is in the future; see Users.isBanned. */
    banned: boolean("banned").notNull().default(false),
    banReason: text("ban_reason"),
    bannedUntil: timestamp("banned_until", { withTimezone: true, mode: "date" }),
    lastSignInAt: timestamp("last_sign_in_at", { withTimezone: true, mode: "date" }),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("users_email_key").on(t.email),
    uniqueIndex("users_username_key").on(sql`lower(${t.username})`),
    // The guest sweep: guests made before the cutoff (their use since is read from their sessions' last_used_at).
    index("users_anonymous_idx").on(t.createdAt).where(sql`${t.isAnonymous}`),
    // The admin listing: newest first, paged by (created_at, id); filters by role, ban and a substring search.
    index("users_created_idx").on(t.createdAt, t.id),
    index("users_roles_idx").using("gin", t.roles),
    index("users_banned_idx").on(t.createdAt, t.id).where(sql`${t.banned}`),
    // Trigrams answer `LIKE '%…%'` from the index (pg_trgm, loaded by migration 0002 and by PGlite's extension).
    index("users_search_idx").using("gin", sql`${userSearchText(t)} gin_trgm_ops`),
  ],
);

/**
 * The one text a user search matches against: email, username and names, lower-cased. The index above is built on
 * this exact expression, so a query must use it unchanged for the index to serve it.
 */
export function userSearchText(t: { email: unknown; username: unknown; firstName: unknown; lastName: unknown }): SQL {
  return sql`(lower(coalesce(${t.email}, '') || ' ' || coalesce(${t.username}, '') || ' ' || coalesce(${t.firstName}, '') || ' ' || coalesce(${t.lastName}, '')))`;
}

export const sessions = pgTable(
  "sessions",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    amr: text("amr").array().notNull(),
    teamId: uuid("team_id"),
    teamRole: text("team_role"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    /**
     * When the session last proved a factor: its sign-in, or its last `POST /auth/reauth`. Access tokens carry it as
     * `auth_time`; a refresh copies it unchanged, so only a new proof makes step-up routes reachable again.
     */
    authTime: timestamp("auth_time", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /**
     * The session's refresh token chain (src/sessions/refresh-token.ts): the generation of the live token, the
     * sha256 of its secret, when it was issued and when it expires, and its secret sealed with the previous token's
     * secret, so the previous token's holder alone can be answered the same successor within the grace window.
     * A session's tokens live in its row, so a rotation is one single-row update and no insert.
     */
    refreshGen: integer("refresh_gen").notNull().default(0),
    refreshHash: text("refresh_hash").notNull().default(""),
    refreshIssuedAt: timestamp("refresh_issued_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    refreshExpiresAt: timestamp("refresh_expires_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    refreshSealedNext: text("refresh_sealed_next"),
    /**
     * RATE_LIMIT_REFRESH_SESSION's fixed window: when it began and the presentations counted in it. Kept on the row
     * the rotation updates anyway, so that counting a refresh costs no round trip of its own (bench/analysis.md).
     */
    refreshWindowAt: timestamp("refresh_window_at", { withTimezone: true, mode: "date" }),
    refreshWindowHits: integer("refresh_window_hits").notNull().default(0),
  },
  (t) => [index("sessions_user_idx").on(t.userId)],
);

/** Signing keys (JWKS) and other server secrets made once and shared by every instance. */
/**
 * Revoked sessions and revoked team claims of sessions, each row written in the transaction of the change that revoked
 * it: the record every instance reloads at start and after its revocation channel was down (Redis, which carries the
 * announcements, may lose what it held). A row is needed until no access token it refuses can still be valid.
 */
export const revocations = pgTable(
  "revocations",
  {
    entry: text("entry").primaryKey(),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("revocations_expires_at_idx").on(t.expiresAt)],
);

export const serverKeys = pgTable("server_keys", {
  kid: text("kid").primaryKey(),
  purpose: text("purpose").notNull(),
  alg: text("alg").notNull(),
  publicJwk: jsonb("public_jwk"),
  privateJwk: jsonb("private_jwk").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  retiredAt: timestamp("retired_at", { withTimezone: true, mode: "date" }),
});

export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    userId: uuid("user_id"),
    type: text("type").notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    data: jsonb("data"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("audit_user_idx").on(t.userId, t.id), index("audit_type_idx").on(t.type, t.id)],
);

/**
 * The mail outbox: each mail is a row until it is delivered (then deleted) or given up, so an SMTP outage loses no code
 * or link. The message, recipient included, is sealed (src/tokens/keys.ts): codes and links are secrets at rest too.
 * `nextAttemptAt` is also the claim: a worker moves it past the lease when it takes the row (src/mail/outbox.ts).
 */
export const mailOutbox = pgTable(
  "mail_outbox",
  {
    id: uuid("id").primaryKey(),
    sealed: text("sealed").notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("mail_outbox_due_idx").on(t.nextAttemptAt)],
);

export type UserRow = typeof users.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
