import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "./context";
import { errors } from "./errors";
import { emailCodeFactor, reauthenticate, sendReauthCode } from "./reauth";
import { answerInCookies, assertTrustedOrigin, clearSessionCookies, readCookie, sessionCookies } from "./sessions/cookies";
import { authGuard } from "./sessions/guard";
import { STEP_UP_NOTE } from "./sessions/step-up";
import { nameField, passwordField, requiredString } from "./validation";

const userSchema = z.object({
  id: z.string(),
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  username: z.string().nullable(),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  image: z.string().nullable(),
  roles: z.array(z.string()),
  isAnonymous: z.boolean(),
  mfaEnabled: z.boolean(),
  createdAt: z.string(),
});

export const errorSchema = z.object({
  code: z.string(),
  message: z.string(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export const tokenResponseSchema = z.object({
  user: userSchema,
  accessToken: z.string(),
  refreshToken: z.string(),
  tokenType: z.literal("Bearer"),
  expiresIn: z.number(),
  mfaEnabled: z.boolean(),
});

export const mfaChallengeSchema = z.object({
  mfaRequired: z.literal(true),
  mfaToken: z.string(),
  methods: z.array(z.string()),
});

export const signInResponseSchema = z.union([tokenResponseSchema, mfaChallengeSchema]);

export { userSchema };

export const usernameField = z
  .string()
  .trim()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.' and '-' only");

const imageField = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      return ["https:", "http:"].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, "must be an http(s) URL");

const patchMeBody = z.object({
  firstName: nameField.nullable().optional(),
  lastName: nameField.nullable().optional(),
  username: usernameField.nullable().optional(),
  image: imageField.nullable().optional(),
});

const unauthorized = { 401: errorSchema };

const sessionItemSchema = z.object({
  id: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  current: z.boolean(),
});

const currentSessionSchema = z.object({
  valid: z.literal(true),
  user: userSchema,
  session: z.object({ id: z.string(), createdAt: z.string(), expiresAt: z.string(), amr: z.array(z.string()), teamId: z.string().nullable() }),
});

const activitySchema = z.object({
  events: z.array(z.object({ id: z.number(), type: z.string(), ip: z.string().nullable(), userAgent: z.string().nullable(), createdAt: z.string() })),
  nextCursor: z.string().nullable().describe("Pass it as `before` for the next page; null on the last one"),
});

/** Each factor is optional here; the route needs one (src/reauth.ts). A passkey response is the mfa plugin's to parse. */
const reauthBody = z.object({
  password: passwordField.optional(),
  totpCode: requiredString(64).optional(),
  recoveryCode: requiredString(64).optional(),
  emailCode: requiredString(16).optional(),
  challengeId: requiredString(256).optional(),
  passkeyResponse: z.union([z.record(z.string(), z.unknown()), requiredString(32_768)]).optional(),
});

/** The routes every deployment has: the current user, sessions, refresh and logout. */
export function coreRoutes(ctx: AuthContext) {
  const { sessions, users, audit, events } = ctx;
  ctx.hooks.reauthFactors.push(emailCodeFactor(ctx));
  const cookies = sessionCookies(ctx.config);
  return new Elysia({ name: "auth.core", seed: ctx.id, detail: { tags: ["core"] } })
    .use(authGuard(ctx))
    .get(
      "/me",
      async ({ auth }) => {
        const user = await users.findById(auth.userId);
        if (!user) throw errors.sessionRevoked();
        return users.toPublic(user);
      },
      { auth: true, response: { 200: userSchema, ...unauthorized }, detail: { summary: "The signed-in user" } },
    )
    .patch(
      "/me",
      async ({ auth, body, meta }) => {
        const user = await events.atomic(async (tx) => {
          const row = users.toPublic(await users.update(auth.userId, body, tx));
          await events.emit(tx, { type: "user.updated", data: { user: row } });
          return row;
        });
        await audit.record({ type: "profile_updated", userId: auth.userId, meta, data: { fields: Object.keys(body) } });
        return user;
      },
      {
        auth: true,
        body: patchMeBody,
        response: { 200: userSchema, 400: errorSchema, 409: errorSchema, ...unauthorized },
        detail: { summary: "Update the profile", description: "Unknown fields are ignored. `409 USERNAME_TAKEN`." },
      },
    )
    .delete(
      "/me",
      async ({ auth, meta, set, cookie }) => {
        // The sessions go with the user, a racing sign-in's included; their tokens are refused on every instance.
        await sessions.deleteUser(auth.userId, async (tx) => {
          for (const refuse of ctx.hooks.selfDeletion) await refuse(auth.userId, tx);
        });
        await audit.record({ type: "account_deleted", userId: auth.userId, meta });
        clearSessionCookies(cookie, ctx.config);
        set.status = 204;
      },
      {
        stepUp: true,
        response: { 204: z.void(), ...unauthorized, 403: errorSchema, 409: errorSchema },
        detail: {
          summary: "Delete the account and all its data; its tokens die at once",
          description: `With the admin plugin on, the last admin who can act gets \`409 LAST_ADMIN\` and keeps the account. ${STEP_UP_NOTE}`,
        },
      },
    )
    .get(
      "/me/activity",
      async ({ auth, query }) => {
        const rows = await audit.listForUser(auth.userId, { limit: query.limit + 1, before: query.before });
        const page = rows.slice(0, query.limit);
        return {
          events: page.map((e) => ({ id: e.id, type: e.type, ip: e.ip, userAgent: e.userAgent, createdAt: e.createdAt.toISOString() })),
          nextCursor: rows.length > query.limit ? String(page[page.length - 1]?.id) : null,
        };
      },
      {
        auth: true,
        query: z.object({
          limit: z.coerce.number().int().min(1).max(100).default(20),
          before: z.coerce.number().int().positive().optional(),
        }),
        response: { 200: activitySchema, 400: errorSchema, ...unauthorized },
        detail: {
          summary: "The user's own recent security events",
          description: "Newest first: sign-ins with IP and user agent, failed sign-ins, changes. Pass `nextCursor` as `before` for the next page.",
        },
      },
    )
    .get(
      "/session",
      async ({ auth }) => {
        const { session, user } = await sessions.current(auth);
        return {
          valid: true as const,
          user: users.toPublic(user),
          session: {
            id: session.id,
            createdAt: session.createdAt.toISOString(),
            expiresAt: session.expiresAt.toISOString(),
            amr: session.amr,
            teamId: auth.team?.id ?? null,
          },
        };
      },
      { auth: true, response: { 200: currentSessionSchema, ...unauthorized }, detail: { summary: "Check the access token and return its session" } },
    )
    .post(
      "/refresh",
      ({ body, meta, request }) => {
        if (body?.refreshToken !== undefined) return sessions.refresh(body.refreshToken, meta);
        // No token in the body: a browser session, whose refresh token only the cookie holds; the answer goes there too.
        const fromCookie = readCookie(request, cookies.refresh);
        if (!fromCookie) throw errors.validation([{ path: "refreshToken", message: "is required (in the body, or as the refresh cookie)" }]);
        assertTrustedOrigin(request, cookies);
        answerInCookies(request);
        return sessions.refresh(fromCookie, meta);
      },
      {
        body: z.object({ refreshToken: z.string().min(1).max(512).optional() }).optional(),
        response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
        detail: {
          summary: "Rotate a refresh token",
          description:
            "Each refresh token works once. Presenting a rotated token again within REFRESH_REUSE_GRACE_S returns the same successor pair; later, the whole session is revoked (`401 REFRESH_TOKEN_REUSED`). " +
            "Every presentation of a session's own tokens (a rotation, a replay, a stale one) counts against RATE_LIMIT_REFRESH_SESSION for that session, on every instance; past it, `429 RATE_LIMITED` with Retry-After, and the presented token stays as it was. " +
            "A browser session sends no body: the refresh cookie (`auth_rt`, `__Host-auth_rt` outside localhost) is rotated on the same chain, with the same grace, and both cookies are set again; " +
            "that request must come from a trusted origin (`Origin` of PUBLIC_URL or CORS_ORIGINS, or `Sec-Fetch-Site: same-origin`), else `403 CSRF_REJECTED`.",
        },
      },
    )
    .post(
      "/logout",
      async ({ auth, meta, set, cookie }) => {
        await sessions.revoke(auth.sessionId, "logout");
        await audit.record({ type: "logout", userId: auth.userId, meta, data: { sessionId: auth.sessionId } });
        clearSessionCookies(cookie, ctx.config);
        set.status = 204;
      },
      {
        auth: true,
        response: { 204: z.void(), ...unauthorized },
        detail: { summary: "Revoke the current session", description: "Also expires both browser-session cookies (`Max-Age=0`, `Path=/`)." },
      },
    )
    .get("/sessions", ({ auth }) => sessions.list(auth.userId, auth.sessionId), {
      auth: true,
      response: { 200: z.array(sessionItemSchema), ...unauthorized },
      detail: { summary: "The user's live sessions" },
    })
    .delete(
      "/sessions/:id",
      async ({ auth, params, meta, set }) => {
        const session = await sessions.findOwned(auth.userId, params.id);
        if (!session) throw errors.notFound("Session not found");
        await sessions.revoke(session.id, "revoked_by_user");
        await audit.record({ type: "session_revoked", userId: auth.userId, meta, data: { sessionId: session.id } });
        set.status = 204;
      },
      {
        auth: true,
        params: z.object({ id: z.string().max(64) }),
        response: { 204: z.void(), ...unauthorized, 404: errorSchema },
        detail: { summary: "Revoke one of the user's sessions" },
      },
    )
    .post("/reauth", ({ auth, body, meta }) => reauthenticate(ctx, auth, body, meta), {
      auth: true,
      body: reauthBody,
      response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
      detail: {
        summary: "Prove a factor again, for step-up routes",
        description:
          "Send one of `password`, `totpCode`, `recoveryCode`, `emailCode` (from `POST /reauth/code`), or `challengeId` (from " +
          "`POST /passkeys/login/options`) with `passkeyResponse` (the assertion; user verification required). Every factor sent is " +
          "checked. For an account with MFA on, a password or an email code alone is not enough: add a TOTP code, a recovery code " +
          "(it is spent) or a passkey. Answers `200 TokenResponse` for the same session: its access token has a fresh `auth_time`, " +
          "and its refresh token is rotated (the previous one stops working). `400 VALIDATION_ERROR` with no factor (or no second " +
          "factor when MFA is on), `400 INVALID_CODE` for a wrong TOTP, recovery or email code, `401 INVALID_CREDENTIALS` for a " +
          "wrong password, `401 PASSKEY_INVALID` / `INVALID_CHALLENGE` for a passkey that does not verify or is not the user's, " +
          "`403 FORBIDDEN` for an impersonation token. Guesses are rate-limited: passwords with RATE_LIMIT_LOGIN_EMAIL per account, " +
          "TOTP and recovery codes with RATE_LIMIT_MFA_USER per account, email codes at 5 per code.",
      },
    })
    .post(
      "/reauth/code",
      async ({ auth, meta, set }) => {
        await sendReauthCode(ctx, auth, meta);
        set.status = 202;
        return { message: "A code is on its way to your email address" };
      },
      {
        auth: true,
        response: { 202: z.object({ message: z.string() }), 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
        detail: {
          summary: "Mail a code for POST /reauth",
          description:
            "`202`; a 6-digit code (10 minutes, 5 tries, works once) goes to the signed-in user's email, for `emailCode` in " +
            "`POST /reauth`: the way in for an account without a password. Capped per address by RATE_LIMIT_CODE_EMAIL. " +
            "`400 VALIDATION_ERROR` for an account without an email (a guest).",
        },
      },
    )
    .delete(
      "/sessions",
      async ({ auth, meta, set }) => {
        const count = await sessions.revokeAll(auth.userId, auth.sessionId, "revoked_by_user");
        await audit.record({ type: "session_revoked", userId: auth.userId, meta, data: { others: count } });
        set.status = 204;
      },
      { auth: true, response: { 204: z.void(), ...unauthorized }, detail: { summary: "Revoke every session but the current one" } },
    );
}
