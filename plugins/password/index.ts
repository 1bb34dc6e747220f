import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, signInResponseSchema, userSchema, usernameField } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { captchaField, emailField, nameField, newPasswordField, passwordField, requiredString } from "../../src/validation";
import { definePlugin } from "../../src/plugin";
import { passwordApi } from "./api";
import { retentionTask } from "../../src/retention";
import { PASSWORD_ERRORS } from "./errors";
import * as tables from "./schema";
import { passwordLimits, passwordSettings } from "./settings";
import { assertCurrentPassword, changePassword, confirmEmailChange, countPasswords, deleteEndedResetTokens, forgotPassword, isEmailAvailable, isResetTokenValid, login, register, requestEmailChange, resendVerification, resetPassword, verifyEmail } from "./service";

const codeField = z.string().max(16);
const resetTokenField = requiredString(512);

const registerBody = z.object({
  email: emailField,
  password: newPasswordField,
  confirmPassword: newPasswordField.optional(),
  firstName: nameField.optional(),
  lastName: nameField.optional(),
  username: usernameField.optional(),
  captchaToken: captchaField,
});

const loginBody = z
  .object({
    email: emailField.optional(),
    username: z.string().min(1).max(320).optional(),
    password: passwordField,
    captchaToken: captchaField,
  })
  .refine((b) => b.email !== undefined || b.username !== undefined, { path: ["email"], message: "email or username is required" });

const pendingSchema = z.object({ code: z.literal("PENDING_CONFIRMATION"), message: z.string() });
const acceptedSchema = z.object({ message: z.string() });

type ErrorStatus = 400 | 401 | 403 | 409 | 429;
const errorResponses = <S extends ErrorStatus>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((s) => [s, errorSchema])) as { [K in S]: typeof errorSchema };

/** Email and password accounts: sign-up, sign-in, email confirmation and change, password change and reset. */
export function passwordPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.password", seed: ctx.id, detail: { tags: ["password"] } })
    .use(authGuard(ctx))
    .post(
      "/register",
      async ({ body, auth, meta, set }) => {
        const result = await register(ctx, body, auth, meta);
        set.status = result.status;
        return result.body;
      },
      {
        optionalAuth: true,
        body: registerBody,
        response: { 201: signInResponseSchema, 202: pendingSchema, ...errorResponses(400, 401, 409, 429) },
        detail: {
          summary: "Create an account with email and password",
          description:
            "`201 TokenResponse`, or `202 PENDING_CONFIRMATION` when REQUIRE_EMAIL_VERIFICATION is on (a 6-digit code is mailed; confirm with `POST /email/verify`). Sent with a guest's Bearer token, the guest account becomes this account in place (same id). `409 EMAIL_TAKEN` / `USERNAME_TAKEN`, `400 WEAK_PASSWORD` / `PASSWORD_MISMATCH` / `CAPTCHA_FAILED`.",
        },
      },
    )
    .post("/login", ({ body, meta }) => login(ctx, body, meta), {
      body: loginBody,
      response: { 200: signInResponseSchema, ...errorResponses(400, 401, 403, 429) },
      detail: {
        summary: "Sign in with email (or username) and password",
        description:
          "`200 TokenResponse`, or `200 MfaChallenge` for users with MFA. `401 INVALID_CREDENTIALS` alike for an unknown account and a wrong password; `403 EMAIL_NOT_VERIFIED` when verification is required. Rate-limited per IP and per account.",
      },
    })
    .post("/email/verify", ({ body, meta }) => verifyEmail(ctx, body, meta), {
      body: z.object({ email: emailField, code: codeField }),
      response: { 200: signInResponseSchema, ...errorResponses(400) },
      detail: { summary: "Confirm an email address with its code, and sign in", description: "`400 INVALID_CODE` when wrong, spent, expired or tried 5 times." },
    })
    .post(
      "/email/verify/resend",
      async ({ body, meta, set }) => {
        await resendVerification(ctx, body, meta);
        set.status = 202;
        return { message: "If the account needs confirming, a new code is on its way" };
      },
      {
        body: z.object({ email: emailField }),
        response: { 202: acceptedSchema, ...errorResponses(400, 429) },
        detail: { summary: "Send a new email confirmation code", description: "Answers `202` for every email, registered or not." },
      },
    )
    .post("/email/check", async ({ body, meta }) => ({ available: await isEmailAvailable(ctx, body, meta) }), {
      body: z.object({ email: emailField }),
      response: { 200: z.object({ available: z.boolean() }), ...errorResponses(400, 429) },
      detail: { summary: "Whether an email is free to register", description: "Rate-limited per IP (RATE_LIMIT_EMAIL_CHECK_IP)." },
    })
    .post(
      "/email/change",
      async ({ body, auth, meta, set }) => {
        await requestEmailChange(ctx, auth, body, meta);
        set.status = 202;
        return { message: "A code is on its way to the new address, unless it already has an account" };
      },
      {
        stepUp: "password",
        body: z.object({ newEmail: emailField, password: passwordField.optional() }),
        response: { 202: acceptedSchema, ...errorResponses(400, 401, 403, 429) },
        detail: {
          summary: "Start moving the account to another email",
          description:
            "Mails a code to the new address. `password` is required when the account has one (`401 INVALID_CREDENTIALS` when wrong). " +
            "An address that already has an account answers the same `202` (no enumeration): its owner is mailed a notice and no code is issued. " +
            "Step-up: for an account with a password, the right password is the proof; an account without one needs `auth_time` within " +
            "REAUTH_MAX_AGE_S (else `403 REAUTH_REQUIRED`; renew it with `POST /reauth`).",
        },
      },
    )
    .post("/email/change/confirm", ({ body, auth, meta }) => confirmEmailChange(ctx, auth, body, meta), {
      auth: true,
      body: z.object({ code: codeField }),
      response: { 200: userSchema, ...errorResponses(400, 401, 409) },
      detail: {
        summary: "Finish an email change with the code sent to the new address",
        description: "`200 User` with the new (verified) email; the old address is told. `400 INVALID_CODE`, `409 EMAIL_TAKEN`.",
      },
    })
    .post(
      "/password/change",
      async ({ body, auth, meta, set }) => {
        await changePassword(ctx, auth, body, meta);
        set.status = 204;
      },
      {
        // The right current password is the proof; an impersonation token never passes (403 REAUTH_REQUIRED).
        stepUp: "password",
        body: z.object({ currentPassword: passwordField, newPassword: newPasswordField, confirmPassword: newPasswordField.optional() }),
        response: { 204: z.void(), ...errorResponses(400, 401, 403, 429) },
        detail: {
          summary: "Change the password",
          description:
            "`204`; every other session is revoked. `401 INVALID_CREDENTIALS`, `400 WEAK_PASSWORD` / `PASSWORD_MISMATCH`. " +
            "Step-up: the right current password is the proof; an impersonation token gets `403 REAUTH_REQUIRED`.",
        },
      },
    )
    .post(
      "/password/forgot",
      async ({ body, meta, set }) => {
        await forgotPassword(ctx, body, meta);
        set.status = 202;
        return { message: "If the account exists, a reset link is on its way" };
      },
      {
        body: z.object({ email: emailField, captchaToken: captchaField }),
        response: { 202: acceptedSchema, ...errorResponses(400, 429) },
        detail: {
          summary: "Mail a password reset link",
          description: "Answers `202` for every email, in the same time; the link (APP_URL + PASSWORD_RESET_PATH + `?token=`) works once, for 1 hour.",
        },
      },
    )
    .post("/password/reset/validate", async ({ body }) => ({ valid: await isResetTokenValid(ctx, body) }), {
      body: z.object({ token: resetTokenField }),
      response: { 200: z.object({ valid: z.boolean() }), ...errorResponses(400) },
      detail: { summary: "Whether a reset token can still be used" },
    })
    .post(
      "/password/reset",
      async ({ body, meta, set }) => {
        await resetPassword(ctx, body, meta);
        set.status = 204;
      },
      {
        body: z.object({ token: resetTokenField, newPassword: newPasswordField }),
        response: { 204: z.void(), ...errorResponses(400) },
        detail: {
          summary: "Set a new password with a reset token",
          description: "`204`; the token is spent, the email counts as verified, and every session is revoked. `400 INVALID_RESET_TOKEN` / `WEAK_PASSWORD`.",
        },
      },
    );
}

declare module "../../src/mail/render" {
  interface TemplateProps {
    "verify-email": import("../../emails/verify-email").VerifyEmailProps;
    "password-reset": import("../../emails/password-reset").PasswordResetProps;
    "email-change": import("../../emails/email-change").EmailChangeProps;
    "email-changed": import("../../emails/email-changed").EmailChangedProps;
    "password-changed": import("../../emails/password-changed").PasswordChangedProps;
  }
}

export default definePlugin({
  id: "password",
  settings: passwordSettings,
  limits: passwordLimits,
  tables,
  errors: PASSWORD_ERRORS,
  emails: {
    "verify-email": () => import("../../emails/verify-email"),
    "password-reset": () => import("../../emails/password-reset"),
    "email-change": () => import("../../emails/email-change"),
    "email-changed": () => import("../../emails/email-changed"),
    "password-changed": () => import("../../emails/password-changed"),
  },
  hooks: (ctx) => ({
    credentials: [{ countSignInMethods: countPasswords }],
    maintenance: [retentionTask(ctx, "passwordResetTokens", deleteEndedResetTokens)],
    reauthFactors: [{ field: "password", strong: false, verify: (user, proof) => assertCurrentPassword(ctx, user, String(proof.password)) }],
  }),
  api: passwordApi,
  routes: passwordPlugin,
});
