import { and, desc, eq, inArray, isNull, lt, not, or, type SQL, sql } from "drizzle-orm";
import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import { auditEvents, type UserRow, userSearchText, users } from "../../src/db/schema";
import { errors } from "../../src/errors";
import { sendEmailDetached } from "../../src/mail";
import { assertPasswordPolicy } from "../../src/passwords";
import type { RequestMeta } from "../../src/request";
import type { AuthInfo, ImpersonationResponse } from "../../src/sessions/service";
import { canonicalEmail, type PublicUser, requireEmail } from "../../src/users";
import { isUuid } from "../../src/validation";
import type { OptionalApis } from "../../src/plugin";
import type { PasskeySummary } from "../mfa/api";
import type { LinkedAccount } from "../oauth/api";
import type { TeamSummary } from "../teams/api";
import { adminError } from "./errors";

export const ADMIN_ROLE = "admin";
/** The plugins the admin plugin works with when they are on: what a user has in each, and what ends with a change. */
export const ADMIN_USES = ["password", "mfa", "oauth", "teams"] as const;
export type AdminPeers = OptionalApis<typeof ADMIN_USES>;
/** The set-password link of an account made without a password: a reset link that waits a week for its owner. */
export const SET_PASSWORD_TTL_DAYS = 7;
/** Serialises the changes that take the admin role from someone, so two admins removing each other cannot leave none. */
const ADMIN_SET_LOCK = 7_202_622;

export type AdminUser = PublicUser & {
  banned: boolean;
  banReason: string | null;
  bannedUntil: string | null;
  lastSignInAt: string | null;
  updatedAt: string;
};

export type AdminUserDetail = AdminUser & {
  sessions: Array<{ id: string; createdAt: string; lastUsedAt: string; ip: string | null; userAgent: string | null }>;
  accounts: LinkedAccount[];
  passkeys: PasskeySummary[];
  teams: TeamSummary[];
};

const userNotFound = () => errors.notFound("User not found");
const invalid = (path: string, message: string) => errors.validation([{ path, message }]);

/** `User` plus the ban (as it holds now: an ended one reads as none) and bookkeeping. */
export function toAdminUser(ctx: AuthContext, row: UserRow): AdminUser {
  const banned = ctx.users.isBanned(row, ctx.clock.now());
  return {
    ...ctx.users.toPublic(row),
    banned,
    banReason: banned ? row.banReason : null,
    bannedUntil: banned && row.bannedUntil ? row.bannedUntil.toISOString() : null,
    lastSignInAt: row.lastSignInAt?.toISOString() ?? null,
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * Lets the caller through only as an admin now: the role is read from the database (a token's roles may be a few
 * moments old), and an impersonation token is refused whoever it names, so an admin acting as someone cannot act as
 * an admin at the same time.
 */
export async function requireAdmin(ctx: AuthContext, auth: AuthInfo): Promise<UserRow> {
  if (auth.act) throw errors.forbidden("An impersonation token cannot use the admin API");
  const caller = await ctx.users.findById(auth.userId);
  if (!caller) throw errors.sessionRevoked();
  if (!ctx.users.rolesOf(caller).includes(ADMIN_ROLE)) throw errors.forbidden("This needs the admin role");
  return caller;
}

async function findTarget(ctx: AuthContext, id: string): Promise<UserRow> {
  const row = isUuid(id) ? await ctx.users.findById(id) : undefined;
  if (!row) throw userNotFound();
  return row;
}

/** The target of a change, read and locked in its transaction: changes of the same user wait for each other. */
async function lockTarget(tx: Db, id: string): Promise<UserRow> {
  const [row] = isUuid(id) ? await tx.select().from(users).where(eq(users.id, id)).for("update") : [];
  if (!row) throw userNotFound();
  return row;
}

/** Admins by either source: the stored role, or a verified email listed in ADMIN_EMAILS. */
function isAdminCondition(ctx: AuthContext): SQL {
  const fromSettings = ctx.config.ADMIN_EMAILS.map(canonicalEmail).filter((e): e is string => e !== null);
  const stored = sql`${users.roles} @> ARRAY[${ADMIN_ROLE}]::text[]`;
  if (fromSettings.length === 0) return stored;
  return or(stored, and(inArray(users.email, fromSettings), eq(users.emailVerified, true))) as SQL;
}

/** Whether the admin role of this row comes from ADMIN_EMAILS (and so cannot be taken away here). */
function adminFromSettings(ctx: AuthContext, row: Pick<UserRow, "email" | "emailVerified">): boolean {
  return ctx.users.rolesOf({ ...row, roles: [] }).includes(ADMIN_ROLE);
}

/** Users banned at `now`: a ban past its end is none. */
const bannedAt = (now: Date) => and(eq(users.banned, true), or(isNull(users.bannedUntil), sql`${users.bannedUntil} > ${now.toISOString()}`)) as SQL;

/**
 * The guard rail of a change that takes the admin role from `target` (a ban, a deletion or a change of roles): 409
 * LAST_ADMIN when no other admin who can act (a banned one cannot) would be left; an admin doing it to themselves is
 * 400 VALIDATION_ERROR otherwise. Called in the change's transaction, after `lockTarget`, and before anything is written.
 * The admin-set lock makes the count and the change one step: two admins removing each other at once are counted one
 * after the other, and the second counts after the first has committed (each statement of a transaction sees what was
 * committed before it began), so it finds nobody left but its target. Every path takes the target's row before this
 * lock, never after it, so two such changes cannot deadlock.
 */
async function keepAnAdmin(ctx: AuthContext, tx: Db, admin: UserRow, target: UserRow, field: string): Promise<void> {
  await keepAnotherAdmin(ctx, tx, target);
  if (target.id === admin.id) throw invalid(field, "an admin cannot do this to their own account");
}

/** 409 LAST_ADMIN unless an admin who can act other than `target` is left, counted under the admin-set lock. */
async function keepAnotherAdmin(ctx: AuthContext, tx: Db, target: UserRow): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_SET_LOCK})`);
  const [other] = await tx
    .select({ id: users.id })
    .from(users)
    .where(and(isAdminCondition(ctx), not(bannedAt(ctx.clock.now())), sql`${users.id} <> ${target.id}`))
    .limit(1);
  if (!other) throw adminError("LAST_ADMIN");
}

/**
 * `DELETE /auth/me` of an admin: the account is theirs to delete, unless no other admin who can act would be left
 * (409 LAST_ADMIN), which would leave the server with nobody to manage it.
 */
export async function keepLastAdminOnSelfDeletion(ctx: AuthContext, userId: string, tx: Db): Promise<void> {
  const target = await lockTarget(tx, userId);
  if (isAdmin(ctx, target)) await keepAnotherAdmin(ctx, tx, target);
}

const isAdmin = (ctx: AuthContext, row: UserRow) => ctx.users.rolesOf(row).includes(ADMIN_ROLE);

const userEvent = (ctx: AuthContext, type: "user.created" | "user.updated", row: UserRow) => ({ type, data: { user: ctx.users.toPublic(row) } });

// ---------------------------------------------------------------------------------------------------------------
// Listing

export type ListUsersInput = { query?: string; role?: string; banned?: boolean; limit: number; cursor?: string };

type Cursor = { createdAt: string; id: string };

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString("base64url");
}

function decodeCursor(raw: string): Cursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as unknown[];
    if (typeof createdAt === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(createdAt) && typeof id === "string" && isUuid(id)) {
      return { createdAt, id };
    }
  } catch {}
  throw invalid("cursor", "is not a cursor this listing gave out");
}

/** `%` and `_` in a search are letters, not wildcards. */
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Users newest first, by (created_at, id): the cursor is the last row's key to the microsecond, so users made while
 * someone pages sort before it and never shift a later page (no duplicates, no gaps).
 */
export async function listUsers(ctx: AuthContext, input: ListUsersInput): Promise<{ users: AdminUser[]; nextCursor: string | null }> {
  const now = ctx.clock.now();
  const conditions: Array<SQL | undefined> = [];
  const query = input.query?.trim();
  if (query) conditions.push(sql`${userSearchText(users)} like lower(${`%${escapeLike(query)}%`})`);
  if (input.role) conditions.push(input.role === ADMIN_ROLE ? isAdminCondition(ctx) : sql`${users.roles} @> ARRAY[${input.role}]::text[]`);
  if (input.banned !== undefined) conditions.push(input.banned ? bannedAt(now) : not(bannedAt(now)));
  if (input.cursor) {
    const cursor = decodeCursor(input.cursor);
    conditions.push(sql`(${users.createdAt}, ${users.id}) < (${cursor.createdAt}::timestamptz, ${cursor.id}::uuid)`);
  }
  const rows = await ctx.db
    .select({ user: users, key: sql<string>`to_char(${users.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` })
    .from(users)
    .where(and(...conditions))
    .orderBy(desc(users.createdAt), desc(users.id))
    .limit(input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    users: page.map((r) => toAdminUser(ctx, r.user)),
    nextCursor: rows.length > input.limit && last ? encodeCursor({ createdAt: last.key, id: last.user.id }) : null,
  };
}

export async function getUser(ctx: AuthContext, peers: AdminPeers, id: string): Promise<AdminUserDetail> {
  const row = await findTarget(ctx, id);
  const [live, accounts, passkeys, teams] = await Promise.all([
    ctx.sessions.list(row.id, ""),
    peers.oauth?.accountsOf(row.id) ?? [],
    peers.mfa?.passkeysOf(row.id) ?? [],
    peers.teams?.teamsOf(ctx.db, row.id) ?? [],
  ]);
  return {
    ...toAdminUser(ctx, row),
    sessions: live.map(({ current: _current, ...session }) => session),
    accounts,
    passkeys,
    teams,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

export type CreateUserInput = {
  email: string;
  password?: string;
  firstName?: string | null;
  lastName?: string | null;
  username?: string | null;
  roles?: string[];
  emailVerified?: boolean;
};

const uniqueRoles = (roles: string[]) => [...new Set(roles)];

export async function createUser(ctx: AuthContext, peers: AdminPeers, admin: UserRow, input: CreateUserInput, meta: RequestMeta): Promise<AdminUser> {
  const email = requireEmail(input.email);
  if (input.password !== undefined) await assertPasswordPolicy(ctx.config, input.password, email);
  await ctx.beforeSignUp({ email, method: "admin", ip: meta.ip, userAgent: meta.userAgent });
  const passwordHash = input.password !== undefined ? await ctx.passwords.hash(input.password) : null;
  const user = await ctx.events.atomic(async (tx) => {
    const row = await ctx.users.create(
      {
        email,
        emailVerified: input.emailVerified ?? false,
        passwordHash,
        firstName: input.firstName ?? null,
        lastName: input.lastName ?? null,
        username: input.username ?? null,
        roles: uniqueRoles(input.roles ?? ["user"]),
      },
      tx,
    );
    await ctx.events.emit(tx, userEvent(ctx, "user.created", row));
    return row;
  });
  await ctx.audit.record({ type: "admin_user_created", userId: user.id, meta, data: { adminId: admin.id } });
  if (!passwordHash) await peers.password?.mailSetPasswordLink({ ...user, email }, SET_PASSWORD_TTL_DAYS);
  return toAdminUser(ctx, user);
}

export type UpdateUserInput = {
  firstName?: string | null;
  lastName?: string | null;
  username?: string | null;
  email?: string;
  emailVerified?: boolean;
  roles?: string[];
};

/**
 * Changes a user's profile, email or roles. A new email or new roles end every session of the user in the same
 * transaction (their tokens carried the old ones), and a new email spends the reset links sent to the old one.
 */
export async function updateUser(
  ctx: AuthContext,
  peers: AdminPeers,
  admin: UserRow,
  id: string,
  input: UpdateUserInput,
  meta: RequestMeta,
): Promise<AdminUser> {
  const email = input.email !== undefined ? requireEmail(input.email) : undefined;
  const { row, ended } = await ctx.sessions.transaction(async (tx) => {
    const before = await lockTarget(tx, id);
    const emailChanges = email !== undefined && email !== before.email;
    const roles = input.roles !== undefined ? uniqueRoles(input.roles) : undefined;
    const after = {
      email: email ?? before.email,
      emailVerified: input.emailVerified ?? (emailChanges ? false : before.emailVerified),
      roles: roles ?? before.roles,
    };
    // Asking for roles without `admin` asks to remove it, even where ADMIN_EMAILS would still grant it.
    const losesAdmin = isAdmin(ctx, before) && (!ctx.users.rolesOf(after).includes(ADMIN_ROLE) || (roles !== undefined && !roles.includes(ADMIN_ROLE)));
    if (losesAdmin && before.id !== admin.id && adminFromSettings(ctx, before)) throw adminError("ADMIN_FROM_SETTINGS");
    if (losesAdmin) await keepAnAdmin(ctx, tx, admin, before, "roles");

    const fields: Partial<typeof users.$inferInsert> = {};
    if (input.firstName !== undefined) fields.firstName = input.firstName;
    if (input.lastName !== undefined) fields.lastName = input.lastName;
    if (input.username !== undefined) fields.username = input.username;
    if (email !== undefined) fields.email = email;
    if (input.emailVerified !== undefined || emailChanges) fields.emailVerified = after.emailVerified;
    if (roles !== undefined) fields.roles = roles;
    const updated = await ctx.users.update(before.id, fields, tx);
    const rolesChange = roles !== undefined && (roles.length !== before.roles.length || roles.some((r) => !before.roles.includes(r)));
    if (emailChanges) await peers.password?.spendResetLinks(tx, before.id);
    if (losesAdmin) for (const changed of ctx.hooks.rightsChanged) await changed(before.id, tx);
    await ctx.events.emit(
      tx,
      userEvent(ctx, "user.updated", updated),
      ...(emailChanges ? [{ type: "email.changed" as const, data: { userId: updated.id, email: updated.email } }] : []),
    );
    return { row: updated, ended: emailChanges || rolesChange ? await ctx.sessions.revokeAll(before.id, undefined, "admin_updated", tx) : 0 };
  });
  await ctx.audit.record({
    type: "admin_user_updated",
    userId: row.id,
    meta,
    data: { adminId: admin.id, fields: Object.keys(input), sessionsRevoked: ended },
  });
  return toAdminUser(ctx, row);
}

/**
 * Bans a user, forever or until `until`. The user row is locked first: a sign-in racing the ban either made its
 * session before (and it is revoked here) or sees the ban once its session exists (and ends it; see markSignedIn).
 */
export async function banUser(
  ctx: AuthContext,
  admin: UserRow,
  id: string,
  input: { reason?: string | null; until?: Date | null },
  meta: RequestMeta,
): Promise<AdminUser> {
  const until = input.until ?? null;
  if (until && until <= ctx.clock.now()) throw invalid("until", "must be in the future");
  const { row, ended } = await ctx.sessions.transaction(async (tx) => {
    const target = await lockTarget(tx, id);
    if (isAdmin(ctx, target)) await keepAnAdmin(ctx, tx, admin, target, "id");
    const banned = await ctx.users.update(target.id, { banned: true, banReason: input.reason ?? null, bannedUntil: until }, tx);
    await ctx.events.emit(tx, {
      type: "user.banned",
      data: { user: ctx.users.toPublic(banned), reason: input.reason ?? null, until: until?.toISOString() ?? null },
    });
    for (const changed of ctx.hooks.rightsChanged) await changed(target.id, tx);
    return { row: banned, ended: await ctx.sessions.revokeAll(target.id, undefined, "banned", tx) };
  });
  await ctx.audit.record({
    type: "admin_user_banned",
    userId: row.id,
    meta,
    data: { adminId: admin.id, reason: input.reason ?? null, until: until?.toISOString() ?? null, sessionsRevoked: ended },
  });
  return toAdminUser(ctx, row);
}

export async function unbanUser(ctx: AuthContext, admin: UserRow, id: string, meta: RequestMeta): Promise<AdminUser> {
  const target = await findTarget(ctx, id);
  const row = await ctx.events.atomic(async (tx) => {
    const unbanned = await ctx.users.update(target.id, { banned: false, banReason: null, bannedUntil: null }, tx);
    await ctx.events.emit(tx, { type: "user.unbanned", data: { user: ctx.users.toPublic(unbanned), reason: null, until: null } });
    return unbanned;
  });
  await ctx.audit.record({ type: "admin_user_unbanned", userId: row.id, meta, data: { adminId: admin.id } });
  return toAdminUser(ctx, row);
}

/**
 * Deletes a user as `DELETE /auth/me` does (Sessions.deleteUser), with the last-admin rule checked in the deletion's
 * own transaction once the row is locked, so two admins deleting each other at once leave one (keepAnAdmin).
 */
export async function deleteUser(ctx: AuthContext, admin: UserRow, id: string, meta: RequestMeta): Promise<void> {
  if (!isUuid(id)) throw userNotFound();
  let target: UserRow | undefined;
  await ctx.sessions.deleteUser(id, async (tx) => {
    target = await lockTarget(tx, id);
    if (isAdmin(ctx, target)) await keepAnAdmin(ctx, tx, admin, target, "id");
  });
  if (!target) throw userNotFound();
  await ctx.audit.record({ type: "admin_user_deleted", userId: target.id, meta, data: { adminId: admin.id, email: target.email } });
}

export async function revokeSessions(ctx: AuthContext, admin: UserRow, id: string, meta: RequestMeta): Promise<void> {
  const target = await findTarget(ctx, id);
  const count = await ctx.sessions.revokeAll(target.id, undefined, "admin_revoked");
  await ctx.audit.record({ type: "admin_sessions_revoked", userId: target.id, meta, data: { adminId: admin.id, count } });
}

/** Turns MFA off for a user who lost their authenticator: TOTP and recovery codes go (passkeys stay); the owner is told. */
export async function resetMfa(ctx: AuthContext, peers: AdminPeers, admin: UserRow, id: string, meta: RequestMeta): Promise<void> {
  const target = await findTarget(ctx, id);
  await ctx.db.transaction(async (tx) => {
    if (peers.mfa) await peers.mfa.turnOff(tx, target.id);
    else await ctx.users.update(target.id, { mfaEnabled: false }, tx);
    if (target.mfaEnabled) await ctx.events.emit(tx, { type: "mfa.disabled", data: { userId: target.id } });
  });
  await ctx.audit.record({ type: "admin_mfa_reset", userId: target.id, meta, data: { adminId: admin.id } });
  await sendEmailDetached(ctx, target.email, "security-notice", {
    event: "An administrator turned off two-factor authentication for your account. Turn it on again from your account settings.",
  });
}

/**
 * A token to act as another user, for support: no refresh token, `act` names the admin, and it lives
 * IMPERSONATION_TTL_S at most. Never another admin (that would be a way to borrow their rights), never a banned user.
 */
export async function impersonate(ctx: AuthContext, admin: UserRow, id: string, meta: RequestMeta): Promise<ImpersonationResponse> {
  const target = await findTarget(ctx, id);
  if (ctx.users.rolesOf(target).includes(ADMIN_ROLE)) throw errors.forbidden("Another admin cannot be impersonated");
  if (ctx.users.isBanned(target, ctx.clock.now())) throw errors.userBanned();
  const response = await ctx.sessions.impersonate(target, admin.id, meta);
  await Promise.all([
    ctx.audit.record({ type: "admin_impersonation", userId: target.id, meta, data: { adminId: admin.id } }),
    ctx.audit.record({ type: "admin_impersonation", userId: admin.id, meta, data: { adminId: admin.id, targetId: target.id } }),
  ]);
  return response;
}

// ---------------------------------------------------------------------------------------------------------------
// Audit

export type AuditQuery = { userId?: string; type?: string; limit: number; cursor?: string };

export async function listAudit(ctx: AuthContext, input: AuditQuery) {
  if (input.userId !== undefined && !isUuid(input.userId)) throw invalid("userId", "must be a user id");
  let before: number | undefined;
  if (input.cursor !== undefined) {
    before = /^[1-9]\d{0,15}$/.test(input.cursor) ? Number(input.cursor) : Number.NaN;
    if (!Number.isSafeInteger(before)) throw invalid("cursor", "is not a cursor this listing gave out");
  }
  const rows = await ctx.db
    .select()
    .from(auditEvents)
    .where(
      and(
        input.userId ? eq(auditEvents.userId, input.userId) : undefined,
        input.type ? eq(auditEvents.type, input.type) : undefined,
        before !== undefined ? lt(auditEvents.id, before) : undefined,
      ),
    )
    .orderBy(desc(auditEvents.id))
    .limit(input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    events: page.map((e) => ({
      id: e.id,
      type: e.type,
      userId: e.userId,
      ip: e.ip,
      userAgent: e.userAgent,
      data: (e.data ?? null) as Record<string, unknown> | null,
      createdAt: e.createdAt.toISOString(),
    })),
    nextCursor: rows.length > input.limit && last ? String(last.id) : null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// For the CLI (`users create-admin EMAIL`)

/**
 * Makes `email` an admin: an existing user gets the role (their sessions end, as a role change from the API does);
 * an unknown email becomes a new user with the role, mailed a set-password link. Answers the user and whether it was made.
 */
export async function grantAdmin(ctx: AuthContext, peers: AdminPeers, rawEmail: string): Promise<{ user: AdminUser; created: boolean }> {
  const email = requireEmail(rawEmail);
  const existing = await ctx.users.findByEmail(email);
  if (!existing) {
    const user = await ctx.events.atomic(async (tx) => {
      const row = await ctx.users.create({ email, roles: ["user", ADMIN_ROLE] }, tx);
      await ctx.events.emit(tx, userEvent(ctx, "user.created", row));
      return row;
    });
    await ctx.audit.record({ type: "admin_user_created", userId: user.id, data: { adminId: null, via: "cli" } });
    await peers.password?.mailSetPasswordLink({ ...user, email }, SET_PASSWORD_TTL_DAYS);
    return { user: toAdminUser(ctx, user), created: true };
  }
  if (existing.roles.includes(ADMIN_ROLE)) return { user: toAdminUser(ctx, existing), created: false };
  const { row, ended } = await ctx.sessions.transaction(async (tx) => {
    const updated = await ctx.users.update(existing.id, { roles: [...existing.roles, ADMIN_ROLE] }, tx);
    await ctx.events.emit(tx, userEvent(ctx, "user.updated", updated));
    return { row: updated, ended: await ctx.sessions.revokeAll(existing.id, undefined, "admin_updated", tx) };
  });
  await ctx.audit.record({ type: "admin_user_updated", userId: row.id, data: { adminId: null, via: "cli", fields: ["roles"], sessionsRevoked: ended } });
  return { user: toAdminUser(ctx, row), created: false };
}
