import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, tokenResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { definePlugin } from "../../src/plugin";
import { requiredString } from "../../src/validation";
import { teamsApi } from "./api";
import { TEAMS_ERRORS } from "./errors";
import * as tables from "./schema";
import { teamsSettings } from "./settings";
import {
  changeMemberRole,
  createTeam,
  deleteTeam,
  getTeam,
  listMembers,
  listTeams,
  removeMember,
  renameTeam,
  switchTeam,
  TEAM_ROLES,
} from "./service";

const roleSchema = z.enum(TEAM_ROLES);
const teamSchema = z.object({ id: z.string(), name: z.string(), createdAt: z.string(), role: roleSchema });
const teamSummarySchema = z.object({ id: z.string(), name: z.string(), role: roleSchema });
const memberSchema = z.object({
  userId: z.string(),
  email: z.string().nullable(),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  role: roleSchema,
});

const nameBody = z.object({ name: z.string().trim().min(1).max(100) });
const roleBody = z.object({ role: roleSchema });
const switchBody = z.object({ teamId: requiredString(64) });

const AUTHZ_NOTE =
  "Permissions are always checked against the team's member rows in the database; the `team` claim of an access token " +
  "is only a hint of which team the client acts for, and is never trusted for authorization.";

/** Teams with owner, admin and member roles, and a session-level "current team" carried in access tokens. */
export function teamsPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.teams", seed: ctx.id, detail: { tags: ["teams"] } })
    .use(authGuard(ctx))
    .post(
      "/teams",
      async ({ auth, body, set }) => {
        const team = await createTeam(ctx, auth.userId, body.name);
        set.status = 201;
        return team;
      },
      {
        auth: true,
        body: nameBody,
        response: { 201: teamSchema, 400: errorSchema, 401: errorSchema },
        detail: { summary: "Create a team", description: "`name` is trimmed, 1 to 100 characters. The creator becomes its owner." },
      },
    )
    .get("/teams", async ({ auth }) => listTeams(ctx.db, auth.userId), {
      auth: true,
      response: { 200: z.array(teamSummarySchema), 401: errorSchema },
      detail: { summary: "The caller's teams", description: "Every team the caller belongs to, with the caller's role in it." },
    })
    .post(
      "/teams/switch",
      async ({ auth, body }) => switchTeam(ctx, auth, body.teamId),
      {
        auth: true,
        body: switchBody,
        response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema },
        detail: {
          summary: "Act for a team",
          description:
            "Answers a fresh token pair for the current session whose access token carries `team: {id, role}`; refreshes keep it. " +
            "`403 NOT_A_MEMBER` when the caller is not in the team (or the id is malformed), `403 DEMO_MODE` when `DEMO_MODE=true`. " +
            "When the member is removed, leaves, or the team is deleted, access tokens carrying that `team` claim are refused at once " +
            "(`401 TEAM_CLAIM_REVOKED`) on every instance; the session lives on and its next refresh has no `team` claim. A role change " +
            `does the same, and the next refresh carries the new role. ${AUTHZ_NOTE}`,
        },
      },
    )
    .get("/teams/:id", async ({ auth, params }) => getTeam(ctx, auth.userId, params.id), {
      auth: true,
      response: { 200: teamSchema, 401: errorSchema, 404: errorSchema },
      detail: { summary: "A team", description: `Members only; \`404\` for anyone else and for a malformed id. ${AUTHZ_NOTE}` },
    })
    .patch("/teams/:id", async ({ auth, params, body }) => renameTeam(ctx, auth.userId, params.id, body.name), {
      auth: true,
      body: nameBody,
      response: { 200: teamSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      detail: {
        summary: "Rename a team",
        description: `Admins and owners; \`403 FORBIDDEN\` for members, \`404\` for non-members. ${AUTHZ_NOTE}`,
      },
    })
    .delete(
      "/teams/:id",
      async ({ auth, params, set }) => {
        await deleteTeam(ctx, auth.userId, params.id);
        set.status = 204;
      },
      {
        auth: true,
        response: { 204: z.void(), 401: errorSchema, 403: errorSchema, 404: errorSchema },
        detail: {
          summary: "Delete a team",
          description: `Owners only (\`403 FORBIDDEN\` for others, \`404\` for non-members). Its members and invitations go with it. ${AUTHZ_NOTE}`,
        },
      },
    )
    .get("/teams/:id/members", async ({ auth, params }) => listMembers(ctx, auth.userId, params.id), {
      auth: true,
      response: { 200: z.array(memberSchema), 401: errorSchema, 404: errorSchema },
      detail: { summary: "A team's members", description: `Members only; \`404\` for anyone else. ${AUTHZ_NOTE}` },
    })
    .patch(
      "/teams/:id/members/:userId",
      async ({ auth, params, body }) => changeMemberRole(ctx, auth.userId, params.id, params.userId, body.role),
      {
        auth: true,
        body: roleBody,
        response: { 200: memberSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema },
        detail: {
          summary: "Change a member's role",
          description:
            "Admins and owners (`403 FORBIDDEN` for members). Only an owner makes owners or changes an owner's role. " +
            `The last owner cannot be demoted: \`409 LAST_OWNER\`. \`404\` for non-members and unknown members. ${AUTHZ_NOTE}`,
        },
      },
    )
    .delete(
      "/teams/:id/members/:userId",
      async ({ auth, params, set }) => {
        await removeMember(ctx, auth.userId, params.id, params.userId);
        set.status = 204;
      },
      {
        auth: true,
        response: { 204: z.void(), 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema },
        detail: {
          summary: "Remove a member, or leave",
          description:
            "Admins and owners remove members; only owners remove owners (`403 FORBIDDEN`); anyone may remove themselves to leave. " +
            `The last owner can neither leave nor be removed: \`409 LAST_OWNER\` (delete the team instead). ${AUTHZ_NOTE}`,
        },
      },
    );
}

export default definePlugin({
  id: "teams",
  settings: teamsSettings,
  tables,
  errors: TEAMS_ERRORS,
  api: teamsApi,
  routes: teamsPlugin,
});
