import { and, asc, eq, gt, inArray, isNotNull, isNull, lt, or, type SQL } from "drizzle-orm";
import { limitInvitationMail } from "../../src/abuse-limits";
import type { AuthContext } from "../../src/context";
import { newId, randomToken, sha256 } from "../../src/crypto";
import type { Db } from "../../src/db";
import type { UserRow } from "../../src/db/schema";
import { coreError, errors } from "../../src/errors";
import { invitationsError } from "./errors";
import { sendEmailDetached } from "../../src/mail";
import { assertPasswordPolicy } from "../../src/passwords";
import type { RequestMeta } from "../../src/request";
import { deleteInBatches, retentionCutoff } from "../../src/retention";
import type { AuthInfo, TokenResponse } from "../../src/sessions/service";
import { isUuid } from "../../src/validation";
import type { TeamRole, TeamsApi } from "../teams/api";
import { invitations } from "./schema";

/** Invitation links live a week. */
export const INVITATION_TTL_S = 7 * 24 * 60 * 60;

/** The authentication method reference of a session started by accepting an invitation: proof of the invited email. */
export const INVITATION_AMR = ["invite"];

export type InvitationView = { id: string; email: string; teamId: string | null; role: TeamRole; expiresAt: string };
export type PendingInvitation = InvitationView & { createdAt: string };

type InvitationRow = typeof invitations.$inferSelect;

const invalidToken = () => invitationsError("INVALID_INVITATION_TOKEN");
const invitationNotFound = () => errors.notFound("Invitation not found");

const isGlobalAdmin = (auth: AuthInfo) => auth.roles.includes("admin");

function view(teams: TeamsApi, row: Pick<InvitationRow, "id" | "email" | "teamId" | "role" | "expiresAt">): InvitationView {
  return { id: row.id, email: row.email, teamId: row.teamId, role: teams.roleOf(row.role), expiresAt: row.expiresAt.toISOString() };
}

const pendingView = (teams: TeamsApi, row: InvitationRow): PendingInvitation => ({ ...view(teams, row), createdAt: row.createdAt.toISOString() });

/**
 * Not accepted, not revoked, not expired, and its inviter still exists: a deleted inviter's invitations die with the
 * account (the foreign key sets `invited_by` to null).
 */
const pending = (now: Date): SQL | undefined =>
  and(isNull(invitations.acceptedAt), isNull(invitations.revokedAt), gt(invitations.expiresAt, now), isNotNull(invitations.invitedBy));

/**
 * An invitation lives only while its inviter may still make it. Run in the transaction that changed the inviter's
 * rights: a banned inviter loses every pending invitation; one who is no longer a global admin loses those only an
 * admin may make (without a team, or to a team they do not administer); in a team, one who left, was removed or is a
 * plain member loses them all, and one no longer owner loses those that invite owners (only owners invite owners).
 * Revoked is for good: rights given back later revive nothing.
 */
export async function revokeInvitationsBeyondRights(ctx: AuthContext, teams: TeamsApi, userId: string, db: Db): Promise<void> {
  const now = ctx.clock.now();
  const sent = await db
    .select({ id: invitations.id, teamId: invitations.teamId, role: invitations.role })
    .from(invitations)
    .where(and(eq(invitations.invitedBy, userId), pending(now)));
  if (sent.length === 0) return;
  const inviter = await ctx.users.findById(userId, db);
  const banned = !inviter || ctx.users.isBanned(inviter, now);
  if (inviter && !banned && ctx.users.rolesOf(inviter).includes("admin")) return;
  const dead: string[] = [];
  for (const invitation of sent) {
    const role = !banned && invitation.teamId ? await teams.roleIn(db, invitation.teamId, userId) : undefined;
    const allowed = role === "owner" || (role === "admin" && invitation.role !== "owner");
    if (!allowed) dead.push(invitation.id);
  }
  if (dead.length > 0) await db.update(invitations).set({ revokedAt: now }).where(inArray(invitations.id, dead));
}

/**
 * Invites an email, to a team or to none. Team admins and owners invite to their team (only owners invite owners);
 * users with the global `admin` role invite to any team or to none. A new invitation replaces the pending ones for
 * the same email and team, so only the latest link works.
 */
export async function createInvitation(
  ctx: AuthContext,
  teams: TeamsApi,
  auth: AuthInfo,
  input: { email: string; teamId?: string; role: TeamRole; meta: RequestMeta },
): Promise<InvitationView> {
  const { email, role } = input;
  const teamId = input.teamId ?? null;
  let name: string | null = null;
  if (teamId) {
    const callerRole = await teams.roleIn(ctx.db, teamId, auth.userId);
    const mayInvite = isGlobalAdmin(auth) || callerRole === "owner" || callerRole === "admin";
    if (!mayInvite) throw errors.forbidden("Only team admins and owners can invite to this team");
    if (role === "owner" && callerRole !== "owner" && !isGlobalAdmin(auth)) throw errors.forbidden("Only owners can invite owners");
    name = (await teams.teamName(ctx.db, teamId)) ?? null;
    if (name === null) throw errors.notFound("Team not found");
  } else if (!isGlobalAdmin(auth)) {
    throw errors.forbidden("Only administrators can invite without a team");
  }

  // A team (a guest can make one) must not be a way to mail one address invitation after invitation.
  await limitInvitationMail(ctx, input.meta, email);
  const token = randomToken(32);
  const now = ctx.clock.now();
  const row = {
    id: newId(),
    email,
    teamId,
    role,
    tokenHash: sha256(token),
    invitedBy: auth.userId,
    createdAt: now,
    expiresAt: new Date(now.getTime() + INVITATION_TTL_S * 1000),
  };
  await ctx.db.transaction(async (tx) => {
    await tx
      .update(invitations)
      .set({ revokedAt: now })
      .where(and(eq(invitations.email, email), teamId ? eq(invitations.teamId, teamId) : isNull(invitations.teamId), pending(now)));
    await tx.insert(invitations).values(row);
    await ctx.events.emit(tx, { type: "invitation.created", data: { invitation: { id: row.id, email, teamId, role } } });
  });

  const inviter = await ctx.users.findById(auth.userId);
  const link = `${ctx.config.APP_URL.replace(/\/+$/, "")}${ctx.config.INVITATION_PATH}?token=${encodeURIComponent(token)}`;
  await sendEmailDetached(ctx, email, "invitation", { link, teamName: name, inviterEmail: inviter?.email ?? null });
  await ctx.audit.record({ type: "invitation_created", userId: auth.userId, meta: input.meta, data: { invitationId: row.id, teamId } });
  return view(teams, row);
}

/**
 * Pending invitations the caller may see: those of one team (its admins and owners, or global admins), or without a
 * team id every one the caller may see (global admins: all; others: those of the teams they administer).
 */
export async function listInvitations(ctx: AuthContext, teams: TeamsApi, auth: AuthInfo, teamId?: string): Promise<PendingInvitation[]> {
  const now = ctx.clock.now();
  let scope: SQL | undefined;
  if (teamId) {
    if (!isGlobalAdmin(auth)) {
      // Only its admins and owners see a team's invitations; anyone else sees none (as without `teamId`), not an error.
      const role = await teams.roleIn(ctx.db, teamId, auth.userId);
      if (role !== "owner" && role !== "admin") return [];
    }
    scope = eq(invitations.teamId, teamId);
  } else if (!isGlobalAdmin(auth)) {
    scope = inArray(invitations.teamId, await teams.teamsAdministeredBy(ctx.db, auth.userId));
  }
  const rows = await ctx.db
    .select()
    .from(invitations)
    .where(and(scope, pending(now)))
    .orderBy(asc(invitations.createdAt), asc(invitations.id));
  return rows.map((row) => pendingView(teams, row));
}

/** Revokes an invitation the caller may manage; 404 for any other, so ids of other teams' invitations reveal nothing. */
export async function revokeInvitation(ctx: AuthContext, teams: TeamsApi, auth: AuthInfo, id: string, meta: RequestMeta): Promise<void> {
  if (!isUuid(id)) throw invitationNotFound();
  const [row] = await ctx.db
    .select()
    .from(invitations)
    .where(and(eq(invitations.id, id), isNull(invitations.acceptedAt), isNull(invitations.revokedAt)))
    .limit(1);
  if (!row) throw invitationNotFound();
  if (!isGlobalAdmin(auth)) {
    const role = row.teamId ? await teams.roleIn(ctx.db, row.teamId, auth.userId) : undefined;
    if (role !== "owner" && role !== "admin") throw invitationNotFound();
  }
  const revoked = await ctx.db
    .update(invitations)
    .set({ revokedAt: ctx.clock.now() })
    .where(and(eq(invitations.id, id), isNull(invitations.acceptedAt), isNull(invitations.revokedAt)))
    .returning({ id: invitations.id });
  if (revoked.length === 0) throw invitationNotFound();
  await ctx.audit.record({ type: "invitation_revoked", userId: auth.userId, meta, data: { invitationId: id, teamId: row.teamId } });
}

async function findPending(ctx: AuthContext, token: string): Promise<InvitationRow | undefined> {
  const [row] = await ctx.db
    .select()
    .from(invitations)
    .where(and(eq(invitations.tokenHash, sha256(token)), pending(ctx.clock.now())))
    .limit(1);
  return row;
}

/** Tells a client whether a token is still good, and for whom, so it can show the right form. */
export async function validateInvitation(
  ctx: AuthContext,
  teams: TeamsApi,
  token: string,
): Promise<{ valid: boolean; email?: string; teamName?: string }> {
  const row = await findPending(ctx, token);
  if (!row) return { valid: false };
  const name = row.teamId ? await teams.teamName(ctx.db, row.teamId) : undefined;
  return name ? { valid: true, email: row.email, teamName: name } : { valid: true, email: row.email };
}

export type AcceptInput = {
  token: string;
  password?: string;
  firstName?: string | null;
  lastName?: string | null;
  auth: AuthInfo | null;
  meta: RequestMeta;
};

/**
 * Accepts an invitation. Signed in as the invited email: the membership is added to that account, and the caller's
 * session (not a new one: the mailed token is no second factor) gets a fresh pair. Not signed in:
 * a new, verified account with the given password. Either way the token is consumed in the same transaction that
 * makes the account and the membership, by an UPDATE that only one of two concurrent requests can win.
 * Nothing is consumed when the answer is 403 (another user's token) or 409 (the email already has an account).
 */
export async function acceptInvitation(ctx: AuthContext, teams: TeamsApi, input: AcceptInput): Promise<TokenResponse> {
  const invitation = await findPending(ctx, input.token);
  if (!invitation) throw invalidToken();
  const accepted = (userId: string) =>
    ctx.audit.record({ type: "invitation_accepted", userId, meta: input.meta, data: { invitationId: invitation.id, teamId: invitation.teamId } });
  if (input.auth) {
    // Signed in: the caller's own session gets the fresh pair, as a team switch does. A new session here would be
    // a sign-in by the mailed token alone, with a fresh auth_time: a second factor and step-up skipped.
    const answer = await joinAsSignedInUser(ctx, teams, invitation, input.auth);
    await accepted(input.auth.userId);
    return answer;
  }
  const user = await joinWithNewAccount(ctx, teams, invitation, input);
  await accepted(user.id);
  // The one way a sign-in ends: the session, the sign_in audit row and the new-device mail; a ban (also one landing
  // meanwhile) answers 403 there. A new account whose sign-in fails is deleted there, and its token can be used again.
  return ctx.startSession(user, {
    amr: INVITATION_AMR,
    meta: input.meta,
    method: "invitation",
    madeNow: true,
    giveBack: () => reopen(ctx.db, invitation.id),
  });
}

/** Adds the membership of an invitation spent in `tx`, announcing the acceptance and the new member. */
async function join(ctx: AuthContext, teams: TeamsApi, tx: Db, invitation: InvitationRow, userId: string, now: Date): Promise<void> {
  const added = invitation.teamId ? await teams.addMember(tx, invitation.teamId, userId, teams.roleOf(invitation.role), now) : false;
  const { id, email, teamId, role } = invitation;
  await ctx.events.emit(
    tx,
    { type: "invitation.accepted", data: { invitation: { id, email, teamId, role } } },
    ...(added && teamId ? [{ type: "team.member_added" as const, data: { teamId, userId, role } }] : []),
  );
}

async function joinAsSignedInUser(ctx: AuthContext, teams: TeamsApi, invitation: InvitationRow, auth: AuthInfo): Promise<TokenResponse> {
  const caller = await ctx.users.findById(auth.userId);
  if (!caller) throw errors.sessionRevoked();
  if (caller.email !== invitation.email) throw errors.forbidden("This invitation was sent to another email address");
  // Spent, joined and verified in the transaction of the session's rotation: a failure of either leaves all as it was.
  return ctx.sessions.reissue(auth, {
    inTransaction: async (tx) => {
      const now = ctx.clock.now();
      await consume(tx, invitation.tokenHash, now);
      await join(ctx, teams, tx, invitation, caller.id, now);
      // The token came by mail to this address, which proves it.
      if (caller.emailVerified) return;
      const verified = await ctx.users.update(caller.id, { emailVerified: true }, tx);
      await ctx.events.emit(tx, { type: "user.updated", data: { user: ctx.users.toPublic(verified) } });
    },
  });
}

async function joinWithNewAccount(ctx: AuthContext, teams: TeamsApi, invitation: InvitationRow, input: AcceptInput): Promise<UserRow> {
  const email = invitation.email;
  const existing = await ctx.users.findByEmail(email);
  // The invitation came to this mailbox, so telling its holder that the account is banned names nobody new.
  if (existing && ctx.users.isBanned(existing, ctx.clock.now())) throw errors.userBanned();
  if (existing) {
    throw coreError("EMAIL_TAKEN", { message: "An account with this email exists: sign in, then accept the invitation with your token" });
  }
  if (!input.password) throw errors.validation([{ path: "password", message: "is required to create an account" }]);
  await assertPasswordPolicy(ctx.config, input.password, email);
  await ctx.beforeSignUp({ email, method: "invitation", ip: input.meta.ip, userAgent: input.meta.userAgent });
  const passwordHash = await ctx.passwords.hash(input.password);
  const user = await ctx.db.transaction(async (txn) => {
    const tx = txn as unknown as Db;
    const now = ctx.clock.now();
    await consume(tx, invitation.tokenHash, now);
    // A concurrent sign-up of the same email fails here with 409 EMAIL_TAKEN, and the consumption rolls back.
    const created = await ctx.users.create(
      { email, emailVerified: true, passwordHash, firstName: input.firstName || null, lastName: input.lastName || null },
      tx,
    );
    await ctx.events.emit(tx, { type: "user.created", data: { user: ctx.users.toPublic(created) } });
    await join(ctx, teams, tx, invitation, created.id, now);
    return created;
  });
  await ctx.audit.record({ type: "sign_up", userId: user.id, meta: input.meta, data: { method: "invitation" } });
  return user;
}

/** Spends the token, or 400 INVALID_INVITATION_TOKEN when another request spent it first (or it was revoked or expired meanwhile). */
async function consume(tx: Db, tokenHash: string, now: Date): Promise<void> {
  const [won] = await tx
    .update(invitations)
    .set({ acceptedAt: now })
    .where(and(eq(invitations.tokenHash, tokenHash), pending(now)))
    .returning({ id: invitations.id });
  if (!won) throw invalidToken();
}

/** Makes a spent invitation pending again, for a sign-up through it that was undone. */
async function reopen(db: Db, invitationId: string): Promise<void> {
  await db.update(invitations).set({ acceptedAt: null }).where(eq(invitations.id, invitationId));
}

/**
 * Retention (a maintenance task): invitations never accepted that expired or were revoked more than a day ago go
 * (a late click still answers INVALID_INVITATION_TOKEN); accepted ones stay, as the record of who invited whom.
 */
export async function deleteEndedInvitations(ctx: AuthContext): Promise<number> {
  const cutoff = retentionCutoff(ctx);
  const ended = and(isNull(invitations.acceptedAt), or(lt(invitations.expiresAt, cutoff), lt(invitations.revokedAt, cutoff)));
  return deleteInBatches(ctx.db, invitations, invitations.id, ended);
}
