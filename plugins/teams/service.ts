import { and, asc, eq } from "drizzle-orm";
import { isUuid } from "../../src/validation";
import type { AuthContext } from "../../src/context";
import { newId } from "../../src/crypto";
import type { Db } from "../../src/db";
import { users } from "../../src/db/schema";
import { errors } from "../../src/errors";
import { teamsError } from "./errors";
import type { AuthInfo, TokenResponse } from "../../src/sessions/service";
import { teamMembers, teams } from "./schema";

export const TEAM_ROLES = ["owner", "admin", "member"] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

export type Team = { id: string; name: string; createdAt: string; role: TeamRole };
export type TeamSummary = { id: string; name: string; role: TeamRole };
export type TeamMember = { userId: string; email: string | null; firstName: string | null; lastName: string | null; role: TeamRole };

const RANK: Record<TeamRole, number> = { member: 0, admin: 1, owner: 2 };
const atLeast = (role: TeamRole, wanted: TeamRole) => RANK[role] >= RANK[wanted];

const teamNotFound = () => errors.notFound("Team not found");
const memberNotFound = () => errors.notFound("Member not found");
const lastOwner = () => teamsError("LAST_OWNER");

/** A stored role as a role: an unknown one reads as the least, `member`. */
export const asRole = (role: string): TeamRole => (TEAM_ROLES as readonly string[]).includes(role) ? (role as TeamRole) : "member";

/** The caller's role in a team, read from the database (never from the token's claim), or undefined for non-members. */
export async function roleIn(db: Db, teamId: string, userId: string): Promise<TeamRole | undefined> {
  if (!isUuid(teamId)) return undefined;
  const [row] = await db
    .select({ role: teamMembers.role })
    .from(teamMembers)
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)))
    .limit(1);
  return row ? asRole(row.role) : undefined;
}

/** The caller's role, or 404 for non-members, so a team's existence is not revealed to outsiders. */
async function requireMember(db: Db, teamId: string, userId: string): Promise<TeamRole> {
  const role = await roleIn(db, teamId, userId);
  if (!role) throw teamNotFound();
  return role;
}

/** Locks every member row of a team until the transaction ends, so owner counts cannot change under us. */
async function lockMembers(tx: Db, teamId: string) {
  const rows = await tx
    .select({ userId: teamMembers.userId, role: teamMembers.role })
    .from(teamMembers)
    .where(eq(teamMembers.teamId, teamId))
    // One lock order for every caller, so two transactions locking the same team cannot deadlock.
    .orderBy(asc(teamMembers.userId))
    .for("update");
  return rows.map((r) => ({ userId: r.userId, role: asRole(r.role) }));
}

export async function createTeam(ctx: AuthContext, userId: string, name: string): Promise<Team> {
  const id = newId();
  const createdAt = ctx.clock.now();
  await ctx.db.transaction(async (tx) => {
    await tx.insert(teams).values({ id, name, createdAt, updatedAt: createdAt });
    await tx.insert(teamMembers).values({ teamId: id, userId, role: "owner", createdAt });
    await ctx.events.emit(
      tx,
      { type: "team.created", data: { team: { id, name } } },
      { type: "team.member_added", data: { teamId: id, userId, role: "owner" } },
    );
  });
  return { id, name, role: "owner", createdAt: createdAt.toISOString() };
}

export async function listTeams(db: Db, userId: string): Promise<TeamSummary[]> {
  const rows = await db
    .select({ id: teams.id, name: teams.name, role: teamMembers.role })
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(eq(teamMembers.userId, userId))
    .orderBy(asc(teams.createdAt), asc(teams.id));
  return rows.map((r) => ({ id: r.id, name: r.name, role: asRole(r.role) }));
}

export async function getTeam(ctx: AuthContext, userId: string, teamId: string): Promise<Team> {
  if (!isUuid(teamId)) throw teamNotFound();
  const [row] = await ctx.db
    .select({ id: teams.id, name: teams.name, createdAt: teams.createdAt, role: teamMembers.role })
    .from(teamMembers)
    .innerJoin(teams, eq(teams.id, teamMembers.teamId))
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)))
    .limit(1);
  if (!row) throw teamNotFound();
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), role: asRole(row.role) };
}

export async function renameTeam(ctx: AuthContext, userId: string, teamId: string, name: string): Promise<Team> {
  const role = await requireMember(ctx.db, teamId, userId);
  if (!atLeast(role, "admin")) throw errors.forbidden("Only team admins and owners can rename the team");
  const [row] = await ctx.db.update(teams).set({ name, updatedAt: ctx.clock.now() }).where(eq(teams.id, teamId)).returning();
  if (!row) throw teamNotFound();
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), role };
}

/** Deletes a team (owners only); every session acting for it forgets it in the same transaction. */
export async function deleteTeam(ctx: AuthContext, userId: string, teamId: string): Promise<void> {
  const staleClaims = await ctx.db.transaction(async (tx) => {
    const members = isUuid(teamId) ? await lockMembers(tx, teamId) : [];
    const me = members.find((m) => m.userId === userId);
    if (!me) throw teamNotFound();
    if (me.role !== "owner") throw errors.forbidden("Only team owners can delete the team");
    const dropped = await ctx.sessions.teamClaims.drop(teamId, undefined, tx);
    const [team] = await tx.delete(teams).where(eq(teams.id, teamId)).returning({ id: teams.id, name: teams.name });
    if (team) await ctx.events.emit(tx, { type: "team.deleted", data: { team } });
    return dropped;
  });
  // After the commit: access tokens claiming the team die at once on every instance.
  await ctx.sessions.teamClaims.revoke(staleClaims);
}

export async function listMembers(ctx: AuthContext, userId: string, teamId: string): Promise<TeamMember[]> {
  await requireMember(ctx.db, teamId, userId);
  const rows = await ctx.db
    .select({ userId: teamMembers.userId, email: users.email, firstName: users.firstName, lastName: users.lastName, role: teamMembers.role })
    .from(teamMembers)
    .innerJoin(users, eq(users.id, teamMembers.userId))
    .where(eq(teamMembers.teamId, teamId))
    .orderBy(asc(teamMembers.createdAt), asc(teamMembers.userId));
  return rows.map((r) => ({ ...r, role: asRole(r.role) }));
}

async function memberView(db: Db, teamId: string, userId: string): Promise<TeamMember> {
  const [row] = await db
    .select({ userId: teamMembers.userId, email: users.email, firstName: users.firstName, lastName: users.lastName, role: teamMembers.role })
    .from(teamMembers)
    .innerJoin(users, eq(users.id, teamMembers.userId))
    .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, userId)))
    .limit(1);
  if (!row) throw memberNotFound();
  return { ...row, role: asRole(row.role) };
}

/**
 * Changes a member's role. Admins and owners may; only an owner may make an owner or change an owner; the last owner
 * cannot be demoted. The member rows are locked first so two concurrent demotions cannot leave the team ownerless.
 */
export async function changeMemberRole(
  ctx: AuthContext,
  actorId: string,
  teamId: string,
  targetId: string,
  role: TeamRole,
): Promise<TeamMember> {
  let staleClaims: Awaited<ReturnType<typeof ctx.sessions.teamClaims.setRole>> = [];
  const member = await ctx.db.transaction(async (tx) => {
    const members = isUuid(teamId) ? await lockMembers(tx, teamId) : [];
    const actor = members.find((m) => m.userId === actorId);
    if (!actor) throw teamNotFound();
    if (!atLeast(actor.role, "admin")) throw errors.forbidden("Only team admins and owners can change roles");
    const target = isUuid(targetId) ? members.find((m) => m.userId === targetId) : undefined;
    if (!target) throw memberNotFound();
    if ((role === "owner" || target.role === "owner") && actor.role !== "owner") {
      throw errors.forbidden("Only an owner can make an owner or change an owner's role");
    }
    if (target.role === "owner" && role !== "owner" && members.filter((m) => m.role === "owner").length === 1) throw lastOwner();
    if (target.role !== role) {
      await tx.update(teamMembers).set({ role }).where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, targetId)));
      staleClaims = await ctx.sessions.teamClaims.setRole(targetId, teamId, role, tx);
      for (const changed of ctx.hooks.rightsChanged) await changed(targetId, tx);
    }
    return memberView(tx, teamId, targetId);
  });
  // After the commit: tokens claiming the old role die; the next refresh carries the new one.
  await ctx.sessions.teamClaims.revoke(staleClaims);
  return member;
}

/**
 * Removes a member, or lets one leave. Admins and owners remove members; only owners remove owners; the last owner
 * can neither leave nor be removed (delete the team instead). The member's sessions forget the team.
 */
export async function removeMember(ctx: AuthContext, actorId: string, teamId: string, targetId: string): Promise<void> {
  const staleClaims = await ctx.db.transaction(async (tx) => {
    const members = isUuid(teamId) ? await lockMembers(tx, teamId) : [];
    const actor = members.find((m) => m.userId === actorId);
    if (!actor) throw teamNotFound();
    const leaving = actorId === targetId;
    if (!leaving && !atLeast(actor.role, "admin")) throw errors.forbidden("Only team admins and owners can remove members");
    const target = isUuid(targetId) ? members.find((m) => m.userId === targetId) : undefined;
    if (!target) throw memberNotFound();
    if (!leaving && target.role === "owner" && actor.role !== "owner") throw errors.forbidden("Only an owner can remove an owner");
    if (target.role === "owner" && members.filter((m) => m.role === "owner").length === 1) throw lastOwner();
    await tx.delete(teamMembers).where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, targetId)));
    await ctx.events.emit(tx, { type: "team.member_removed", data: { teamId, userId: targetId, role: target.role } });
    for (const changed of ctx.hooks.rightsChanged) await changed(targetId, tx);
    return ctx.sessions.teamClaims.drop(teamId, targetId, tx);
  });
  // After the commit: access tokens claiming the team die at once on every instance.
  await ctx.sessions.teamClaims.revoke(staleClaims);
}

/**
 * Makes the caller's session act for a team: the next access token (and every refresh after it) carries
 * `team: {id, role}`. The member row is locked while the session is updated, so a concurrent removal either
 * happens first (403) or after, and then clears the session again. The team is set in the transaction of the
 * refresh token's rotation, after the app's claims hook: a failure of either leaves the session as it was.
 */
export async function switchTeam(ctx: AuthContext, auth: AuthInfo, teamId: string): Promise<TokenResponse> {
  if (ctx.config.DEMO_MODE) throw teamsError("DEMO_MODE");
  return ctx.sessions.reissue(auth, {
    inTransaction: async (tx) => {
      const [row] = isUuid(teamId)
        ? await tx
            .select({ role: teamMembers.role })
            .from(teamMembers)
            .where(and(eq(teamMembers.teamId, teamId), eq(teamMembers.userId, auth.userId)))
            .for("share")
        : [];
      if (!row) throw teamsError("NOT_A_MEMBER");
      await ctx.sessions.teamClaims.set(auth.sessionId, { id: teamId, role: asRole(row.role) }, tx);
    },
  });
}

/** Adds a membership unless one exists (an existing role is kept); true when it was added. */
export async function addMember(db: Db, teamId: string, userId: string, role: TeamRole, createdAt: Date): Promise<boolean> {
  const added = await db.insert(teamMembers).values({ teamId, userId, role, createdAt }).onConflictDoNothing().returning({ userId: teamMembers.userId });
  return added.length > 0;
}

/** The team's name, or undefined when it is gone. */
export async function teamName(db: Db, teamId: string): Promise<string | undefined> {
  const [row] = await db.select({ name: teams.name }).from(teams).where(eq(teams.id, teamId)).limit(1);
  return row?.name;
}
