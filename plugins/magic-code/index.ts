import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, signInResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { requireEmail } from "../../src/users";
import { captchaField, emailField, formBoolean, requiredString } from "../../src/validation";
import { definePlugin } from "../../src/plugin";
import { MAGIC_CODE_ERRORS } from "./errors";
import { requestCode, verifyCode } from "./service";

const codeSentSchema = z.object({ code: z.literal("CODE_SENT"), message: z.string() });

const requestBody = z.object({
  email: emailField,
  dashboard: formBoolean.optional(),
  captchaToken: captchaField,
});

const verifyBody = z.object({
  email: emailField,
  code: requiredString(32),
});

/** Passwordless sign-in: a 6-digit code by email, which also signs up unknown emails and upgrades guests. */
export function magicCodePlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.magic-code", seed: ctx.id, detail: { tags: ["magic-code"] } })
    .use(authGuard(ctx))
    .post(
      "/code/request",
      async ({ body, meta, set }) => {
        await requestCode(ctx, {
          email: requireEmail(body.email),
          dashboard: body.dashboard ?? false,
          captchaToken: body.captchaToken,
          meta,
        });
        set.status = 202;
        return { code: "CODE_SENT" as const, message: "If this address can receive mail, a sign-in code is on its way" };
      },
      {
        body: requestBody,
        response: { 202: codeSentSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
        detail: {
          summary: "Email a sign-in code",
          description:
            'Always `202 {"code":"CODE_SENT","message"}`, for known and unknown emails alike (an unknown email signs up on verify). ' +
            "The 6-digit code lasts 10 minutes, dies after 5 wrong tries and works once; a new request replaces the previous code. " +
            "`RATE_LIMIT_CODE_EMAIL` per email (`429`); `captchaToken` is required when captcha is on (`400 CAPTCHA_FAILED`). " +
            "With `dashboard: true` the caller asks to sign in to an admin dashboard and is told why not: " +
            "`401 USER_NOT_FOUND` when no account has the email, `403 FORBIDDEN` when it lacks the `admin` role. An address in " +
            "`ADMIN_EMAILS` counts even before it is verified: the admin role comes with the proof, which verifying this code is.",
        },
      },
    )
    .post(
      "/code/verify",
      async ({ body, auth, meta }) => verifyCode(ctx, { email: requireEmail(body.email), code: body.code, auth, meta }),
      {
        optionalAuth: true,
        body: verifyBody,
        response: { 200: signInResponseSchema, 400: errorSchema, 401: errorSchema, 409: errorSchema },
        detail: {
          summary: "Sign in with an emailed code",
          description:
            'Signs in the account with this email (marking it verified) or creates a new, verified account; the session\'s `amr` is `["email"]`. ' +
            "On an account whose email was never verified, this first proof of the mailbox also removes every credential set up " +
            "without it (password, TOTP, passkeys, linked providers) and revokes its sessions, against account pre-hijacking. " +
            "Answers `200 TokenResponse`, or `200 MfaChallenge` when the account has MFA on. A wrong, expired or spent code is `400 INVALID_CODE`. " +
            "With a guest's Bearer token and an unknown email, the guest is upgraded in place (same id, everything attached kept). " +
            "If the email belongs to another account, `409 EMAIL_TAKEN` and both accounts stay as they were; the code is spent " +
            "(checking first would reveal registered emails to anyone holding a guest token), so request a new one to sign in to that account.",
        },
      },
    );
}

declare module "../../src/mail/render" {
  interface TemplateProps {
    "sign-in-code": import("../../emails/sign-in-code").SignInCodeProps;
  }
}

export default definePlugin({
  id: "magic-code",
  errors: MAGIC_CODE_ERRORS,
  emails: { "sign-in-code": () => import("../../emails/sign-in-code") },
  routes: magicCodePlugin,
});
