import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, userSchema, usernameField } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { STEP_UP_NOTE } from "../../src/sessions/step-up";
import { definePlugin } from "../../src/plugin";
import { emailField, formBoolean, nameField, newPasswordField } from "../../src/validation";
import { adminApi, adminGuard } from "./api";
import { ADMIN_ERRORS } from "./errors";
import {
  ADMIN_USES,
  type AdminPeers,
  banUser,
  createUser,
  deleteUser,
  getUser,
  impersonate,
  keepLastAdminOnSelfDeletion,
  listAudit,
  listUsers,
  resetMfa,
  revokeSessions,
  unbanUser,
  updateUser,
} from "./service";

const adminUserSchema = userSchema.extend({
  banned: z.boolean(),
  banReason: z.string().nullable(),
  bannedUntil: z.string().nullable(),
  lastSignInAt: z.string().nullable(),
  updatedAt: z.string(),
});

const adminUserDetailSchema = adminUserSchema.extend({
  sessions: z.array(
    z.object({ id: z.string(), createdAt: z.string(), lastUsedAt: z.string(), ip: z.string().nullable(), userAgent: z.string().nullable() }),
  ),
  accounts: z.array(z.object({ provider: z.string(), providerAccountId: z.string(), email: z.string().nullable(), createdAt: z.string() })),
  passkeys: z.array(z.object({ id: z.string(), name: z.string().nullable(), createdAt: z.string(), lastUsedAt: z.string().nullable() })),
  teams: z.array(z.object({ id: z.string(), name: z.string(), role: z.string() })),
});

const impersonationSchema = z.object({
  user: userSchema,
  accessToken: z.string(),
  tokenType: z.literal("Bearer"),
  expiresIn: z.number(),
  mfaEnabled: z.boolean(),
});

const auditEventSchema = z.object({
  id: z.number(),
  type: z.string(),
  userId: z.string().nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
  createdAt: z.string(),
});

const roleName = z
  .string()
  .trim()
  .regex(/^[a-z][a-z0-9_.:-]{0,31}$/, "lower-case letters, digits, '_', '.', ':' and '-', 32 at most, starting with a letter");
/** A JSON array, or from a form one field (`roles=user`) or the field repeated (`roles=user&roles=admin`). */
const rolesField = z.union([z.array(roleName).max(20), roleName.transform((r) => [r])]);
const limitField = z.coerce.number().int().min(1).max(100).default(20);
const idParams = z.object({ id: z.string().max(64) });

const createBody = z.object({
  email: emailField,
  password: newPasswordField.optional(),
  firstName: nameField.nullable().optional(),
  lastName: nameField.nullable().optional(),
  username: usernameField.nullable().optional(),
  roles: rolesField.optional(),
  emailVerified: formBoolean.optional(),
});

const updateBody = z.object({
  firstName: nameField.nullable().optional(),
  lastName: nameField.nullable().optional(),
  username: usernameField.nullable().optional(),
  email: emailField.optional(),
  emailVerified: formBoolean.optional(),
  roles: rolesField.optional(),
});

const banBody = z.object({
  reason: z.string().trim().max(500).nullable().optional(),
  until: z
    .string()
    .refine((v) => v === "" || !Number.isNaN(Date.parse(v)), "must be an ISO date, e.g. 2027-01-31T00:00:00Z")
    .transform((v) => (v === "" ? null : new Date(v)))
    .nullable()
    .optional(),
});

const guarded = { 401: errorSchema, 403: errorSchema };
const LAST_ADMIN_NOTE =
  "A change that would leave no admin who can act (a banned one cannot) is `409 LAST_ADMIN`, whoever it is done to: such changes are " +
  "counted one after the other, so two admins removing each other at once leave one.";
const CHANGES_NOTE = `Admins only (\`403 FORBIDDEN\` otherwise, impersonation tokens included); audited on the target with \`data.adminId\`. ${STEP_UP_NOTE}`;

/** Users' management over HTTP for holders of the global `admin` role (stored, or from ADMIN_EMAILS). */
export function adminPlugin(ctx: AuthContext, peers: AdminPeers) {
  return new Elysia({ name: "plugin.admin", seed: ctx.id, prefix: "/admin", detail: { tags: ["admin"], security: [{ bearer: [] }] } })
    .use(authGuard(ctx))
    .use(adminGuard(ctx))
    .get(
      "/users",
      ({ query }) => listUsers(ctx, { ...query, banned: query.banned === undefined ? undefined : query.banned === "true" }),
      {
        admin: true,
        query: z.object({
          query: z.string().max(200).optional(),
          role: roleName.optional(),
          banned: z.enum(["true", "false"]).optional(),
          limit: limitField,
          cursor: z.string().max(500).optional(),
        }),
        response: { 200: z.object({ users: z.array(adminUserSchema), nextCursor: z.string().nullable() }), 400: errorSchema, ...guarded },
        detail: {
          summary: "List and search users",
          description:
            "Newest first, in a stable order: pass `nextCursor` as `cursor` for the next page (null on the last); users made meanwhile never " +
            "shift a later page. `query` is a case-insensitive substring of email, username, first or last name. `role=admin` lists admins " +
            "of both sources (stored role and ADMIN_EMAILS). `banned=true` lists users banned now (a ban past its end is none). `limit` 1 to 100, default 20.",
        },
      },
    )
    .get("/users/:id", ({ params }) => getUser(ctx, peers, params.id), {
      admin: true,
      params: idParams,
      response: { 200: adminUserDetailSchema, 404: errorSchema, ...guarded },
      detail: {
        summary: "One user, with their sessions, linked accounts, passkeys and teams",
        description: "`sessions` as GET /auth/sessions without `current`; `accounts`, `passkeys`, `teams` as GET /auth/accounts, /auth/passkeys, /auth/teams.",
      },
    })
    .post(
      "/users",
      async ({ admin, body, meta, set }) => {
        set.status = 201;
        return createUser(ctx, peers, admin, body, meta);
      },
      {
        admin: "step-up",
        body: createBody,
        response: { 201: adminUserSchema, 400: errorSchema, 409: errorSchema, ...guarded },
        detail: {
          summary: "Create a user",
          description:
            "With `password` (checked by the password policy: `400 WEAK_PASSWORD`), the user can sign in at once. Without it, the user is " +
            "mailed a link to choose one: a reset link (`APP_URL` + `PASSWORD_RESET_PATH`) that lives 7 days. `roles` defaults to `[\"user\"]`, " +
            `\`emailVerified\` to false. \`409 EMAIL_TAKEN\` / \`USERNAME_TAKEN\`. ${CHANGES_NOTE} (\`admin_user_created\`)`,
        },
      },
    )
    .patch("/users/:id", ({ admin, params, body, meta }) => updateUser(ctx, peers, admin, params.id, body, meta), {
      admin: "step-up",
      params: idParams,
      body: updateBody,
      response: { 200: adminUserSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...guarded },
      detail: {
        summary: "Change a user's profile, email or roles",
        description:
          "A change of `roles` or `email` ends every session of the user at once, on every instance; a new email is unverified unless " +
          "`emailVerified` says otherwise, and spends reset links sent to the old one. Removing your own `admin` role: `409 LAST_ADMIN` when " +
          `you are the last admin, else \`400 VALIDATION_ERROR\`; removing a role given by ADMIN_EMAILS: \`409 ADMIN_FROM_SETTINGS\`. ${LAST_ADMIN_NOTE} ${CHANGES_NOTE} (\`admin_user_updated\`)`,
      },
    })
    .post("/users/:id/ban", ({ admin, params, body, meta }) => banUser(ctx, admin, params.id, body ?? {}, meta), {
      admin: "step-up",
      params: idParams,
      body: banBody.optional(),
      response: { 200: adminUserSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...guarded },
      detail: {
        summary: "Ban a user",
        description:
          "`until` (ISO date, in the future) ends the ban by itself; without it the ban lasts until an unban. Every session of the user dies at " +
          "once on every instance; until the end every sign-in path answers `403 USER_BANNED` and mails nothing (a refresh answers 401: the " +
          `session is gone). Banning yourself: \`409 LAST_ADMIN\` or \`400 VALIDATION_ERROR\`. ${LAST_ADMIN_NOTE} ${CHANGES_NOTE} (\`admin_user_banned\`)`,
      },
    })
    .post("/users/:id/unban", ({ admin, params, meta }) => unbanUser(ctx, admin, params.id, meta), {
      admin: "step-up",
      params: idParams,
      response: { 200: adminUserSchema, 404: errorSchema, ...guarded },
      detail: {
        summary: "Lift a user's ban",
        description: `After it \`banned\` is false and \`banReason\`, \`bannedUntil\` are null. Sessions ended by the ban stay ended. ${CHANGES_NOTE} (\`admin_user_unbanned\`)`,
      },
    })
    .delete(
      "/users/:id",
      async ({ admin, params, meta, set }) => {
        await deleteUser(ctx, admin, params.id, meta);
        set.status = 204;
      },
      {
        admin: "step-up",
        params: idParams,
        response: { 204: z.void(), 400: errorSchema, 404: errorSchema, 409: errorSchema, ...guarded },
        detail: {
          summary: "Delete a user",
          description: `As DELETE /auth/me: the user and all their data go, their tokens die at once. Deleting yourself: \`409 LAST_ADMIN\` or \`400 VALIDATION_ERROR\`. ${LAST_ADMIN_NOTE} ${CHANGES_NOTE} (\`admin_user_deleted\`)`,
        },
      },
    )
    .delete(
      "/users/:id/sessions",
      async ({ admin, params, meta, set }) => {
        await revokeSessions(ctx, admin, params.id, meta);
        set.status = 204;
      },
      {
        admin: "step-up",
        params: idParams,
        response: { 204: z.void(), 404: errorSchema, ...guarded },
        detail: { summary: "End every session of a user", description: `Their tokens are refused at once on every instance. ${CHANGES_NOTE} (\`admin_sessions_revoked\`)` },
      },
    )
    .post(
      "/users/:id/mfa/reset",
      async ({ admin, params, meta, set }) => {
        await resetMfa(ctx, peers, admin, params.id, meta);
        set.status = 204;
      },
      {
        admin: "step-up",
        params: idParams,
        response: { 204: z.void(), 404: errorSchema, ...guarded },
        detail: {
          summary: "Turn a user's MFA off",
          description: `TOTP and recovery codes are removed (passkeys stay); the user is told by email. ${CHANGES_NOTE} (\`admin_mfa_reset\`)`,
        },
      },
    )
    .post("/users/:id/impersonate", ({ admin, params, meta }) => impersonate(ctx, admin, params.id, meta), {
      admin: "step-up",
      params: idParams,
      response: { 200: impersonationSchema, 404: errorSchema, ...guarded },
      detail: {
        summary: "Act as a user",
        description:
          "A TokenResponse for the user with no `refreshToken`: the access token carries `act: {\"sub\": <admin id>}`, `amr: [\"impersonation\"]` " +
          "and lives IMPERSONATION_TTL_S (default 1800) seconds. It is refused by every /auth/admin route and by step-up. Another admin as " +
          "target: `403 FORBIDDEN`; a banned one: `403 USER_BANNED`. Audited as `admin_impersonation` on the target (`data.adminId`, visible " +
          "in their GET /auth/me/activity) and on the admin (`data.targetId`). Ending the user's sessions ends it too.",
      },
    })
    .get("/audit", ({ query }) => listAudit(ctx, query), {
      admin: true,
      query: z.object({
        userId: z.string().max(64).optional(),
        type: z.string().max(100).optional(),
        limit: limitField,
        cursor: z.string().max(32).optional(),
      }),
      response: { 200: z.object({ events: z.array(auditEventSchema), nextCursor: z.string().nullable() }), 400: errorSchema, ...guarded },
      detail: {
        summary: "Search the audit log",
        description: "Every user's security events and every admin action, newest first; filter by `userId` and `type`. Pass `nextCursor` as `cursor` for the next page (null on the last). `limit` 1 to 100, default 20.",
      },
    });
}

export default definePlugin({
  id: "admin",
  errors: ADMIN_ERRORS,
  uses: ADMIN_USES,
  hooks: (ctx) => ({ selfDeletion: [(userId, tx) => keepLastAdminOnSelfDeletion(ctx, userId, tx)] }),
  api: adminApi,
  routes: adminPlugin,
});
