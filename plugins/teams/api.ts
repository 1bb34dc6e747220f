import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../src/db";
import { teamMembers, teams } from "./schema";
import { addMember, asRole, listTeams, roleIn, TEAM_ROLES, type TeamRole, type TeamSummary, teamName } from "./service";

/**
 * What the teams plugin offers the plugins that depend on it (`dependsOn: ["teams"]`): the roles, and the few reads
 * and writes of memberships they need. Everything else in plugins/teams is its own. Each call takes the handle to
 * run on, so a dependent can make it part of its own transaction.
 */
export type TeamsApi = {
  /** A stored role as a role: an unknown one reads as the least, `member`. */
  roleOf(stored: string): TeamRole;
  /** The user's role in the team, or undefined for a non-member (or a malformed team id). */
  roleIn(db: Db, teamId: string, userId: string): Promise<TeamRole | undefined>;
  /** Every team the user is a member of, with the user's role, oldest first. */
  teamsOf(db: Db, userId: string): Promise<TeamSummary[]>;
  /** The teams in which the user is an admin or an owner. */
  teamsAdministeredBy(db: Db, userId: string): Promise<string[]>;
  /** The team's name, or undefined when it is gone. */
  teamName(db: Db, teamId: string): Promise<string | undefined>;
  /** Adds a membership unless one exists (an existing role is kept); true when it was added. */
  addMember(db: Db, teamId: string, userId: string, role: TeamRole, createdAt: Date): Promise<boolean>;
};

export { TEAM_ROLES, type TeamRole, type TeamSummary };
/** The teams table, for the foreign keys of a dependent's tables. */
export { teams };

export function teamsApi(): TeamsApi {
  return {
    roleOf: asRole,
    teamsOf: listTeams,
    roleIn,
    teamName,
    addMember,
    async teamsAdministeredBy(db, userId) {
      const rows = await db
        .select({ teamId: teamMembers.teamId })
        .from(teamMembers)
        .where(and(eq(teamMembers.userId, userId), inArray(teamMembers.role, ["owner", "admin"])));
      return rows.map((r) => r.teamId);
    },
  };
}

declare module "../../src/plugin" {
  interface PluginApis {
    teams: TeamsApi;
  }
}
