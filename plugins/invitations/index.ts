import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, tokenResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { requireEmail } from "../../src/users";
import { emailField, nameField, newPasswordField, requiredString } from "../../src/validation";
import { TEAM_ROLES, type TeamsApi, teamsApi } from "../teams/api";
import { definePlugin } from "../../src/plugin";
import { retentionTask } from "../../src/retention";
import { INVITATIONS_ERRORS } from "./errors";
import * as tables from "./schema";
import { invitationsSettings } from "./settings";
import { acceptInvitation, createInvitation, deleteEndedInvitations, listInvitations, revokeInvitation, revokeInvitationsBeyondRights, validateInvitation } from "./service";

const teamIdField = z.uuid();
const roleSchema = z.enum(TEAM_ROLES);
const tokenField = requiredString(200);

const invitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  teamId: z.string().nullable(),
  role: roleSchema,
  expiresAt: z.string(),
});
const pendingInvitationSchema = invitationSchema.extend({ createdAt: z.string() });

const createBody = z.object({ email: emailField, teamId: teamIdField.optional(), role: roleSchema.default("member") });
const listQuery = z.object({ teamId: teamIdField.optional() });
const validateBody = z.object({ token: tokenField });
const validationSchema = z.object({ valid: z.boolean(), email: z.string().optional(), teamName: z.string().optional() });
const acceptBody = z.object({
  token: tokenField,
  password: newPasswordField.optional(),
  firstName: nameField.optional(),
  lastName: nameField.optional(),
});

/** Invitations by email, to a team or to the service, accepted into a new account or an existing one. */
export function invitationsPlugin(ctx: AuthContext, { teams }: { teams: TeamsApi }) {
  return new Elysia({ name: "plugin.invitations", seed: ctx.id, detail: { tags: ["invitations"] } })
    .use(authGuard(ctx))
    .post(
      "/invitations",
      async ({ auth, body, meta, set }) => {
        const invitation = await createInvitation(ctx, teams, auth, {
          email: requireEmail(body.email),
          teamId: body.teamId,
          role: body.role,
          meta,
        });
        set.status = 201;
        return invitation;
      },
      {
        auth: true,
        body: createBody,
        response: { 201: invitationSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 429: errorSchema },
        detail: {
          summary: "Invite someone by email",
          description:
            "Team admins and owners invite to their team; users with the global `admin` role invite to any team or to none. " +
            "`role` defaults to `member`; only the team's owners (and global admins) invite owners. Anyone else: `403 FORBIDDEN`; " +
            "a global admin naming an unknown team: `404`. The invitee gets an email with a link to `APP_URL` + `INVITATION_PATH` + " +
            "`?token=...`; the token is 256-bit, single use, valid 7 days, and bound to the invited email. " +
            "A new invitation replaces the pending ones for the same email and team. Each invitation counts against `RATE_LIMIT_MAIL_IP` " +
            "(the caller's IP) and `RATE_LIMIT_MAIL_RECIPIENT` (the invited address): `429 RATE_LIMITED` with `Retry-After`. The mail's " +
            "subject is fixed; the team name is in its body only. An invitation dies when its inviter loses the right to make it (leaves " +
            "the team, is removed, demoted, banned, loses the `admin` role, or is deleted).",
        },
      },
    )
    .get("/invitations", async ({ auth, query }) => listInvitations(ctx, teams, auth, query.teamId), {
      auth: true,
      query: listQuery,
      response: { 200: z.array(pendingInvitationSchema), 400: errorSchema, 401: errorSchema },
      detail: {
        summary: "Pending invitations",
        description:
          "Invitations not accepted, revoked or expired, those the caller may see. With `teamId`: that team's, for its admins and " +
          "owners and for global admins (anyone else sees none: `[]`). Without: global admins all; others those of the teams they administer.",
      },
    })
    .delete(
      "/invitations/:id",
      async ({ auth, params, meta, set }) => {
        await revokeInvitation(ctx, teams, auth, params.id, meta);
        set.status = 204;
      },
      {
        auth: true,
        response: { 204: z.void(), 401: errorSchema, 404: errorSchema },
        detail: {
          summary: "Revoke an invitation",
          description: "Same permission as listing it; `404` for an unknown, accepted or already revoked invitation, or one the caller may not manage.",
        },
      },
    )
    .post("/invitations/validate", async ({ body }) => validateInvitation(ctx, teams, body.token), {
      body: validateBody,
      response: { 200: validationSchema, 400: errorSchema },
      detail: {
        summary: "Check an invitation token",
        description: '`{"valid": true, "email", "teamName"?}` for a pending invitation, else `{"valid": false}`. The token is not spent.',
      },
    })
    .post(
      "/invitations/accept",
      async ({ auth, body, meta }) =>
        acceptInvitation(ctx, teams, {
          token: body.token,
          password: body.password,
          firstName: body.firstName,
          lastName: body.lastName,
          auth,
          meta,
        }),
      {
        optionalAuth: true,
        body: acceptBody,
        response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema },
        detail: {
          summary: "Accept an invitation",
          description:
            "Without a Bearer token: creates a verified account for the invited email with `password` (required, " +
            "`400 VALIDATION_ERROR` without it, `400 WEAK_PASSWORD`) and the names, and joins the team. If an account with the " +
            "email exists: `409 EMAIL_TAKEN` (sign in, then accept again with the Bearer token), and the token stays usable. " +
            "With the invited user's own Bearer token: the membership is added to that account (an existing membership keeps " +
            "its role). Another signed-in user: `403 FORBIDDEN`, the token stays usable. An invalid, used, revoked or expired " +
            'token: `400 INVALID_INVITATION_TOKEN`; of two concurrent accepts exactly one wins. Answers `200 TokenResponse` for a new session with `amr: ["invite"]`.',
        },
      },
    );
}

declare module "../../src/mail/render" {
  interface TemplateProps {
    invitation: import("../../emails/invitation").InvitationProps;
  }
}

export default definePlugin({
  id: "invitations",
  dependsOn: ["teams"],
  settings: invitationsSettings,
  tables,
  errors: INVITATIONS_ERRORS,
  emails: { invitation: () => import("../../emails/invitation") },
  // The hook runs outside the routes, so it takes the teams plugin's public API itself.
  hooks: (ctx) => {
    const teams = teamsApi();
    return {
      rightsChanged: [(userId, db) => revokeInvitationsBeyondRights(ctx, teams, userId, db)],
      maintenance: [retentionTask(ctx, "invitations", deleteEndedInvitations)],
    };
  },
  routes: invitationsPlugin,
});
