import { Elysia } from "elysia";
import type { ReactNode } from "react";
import { z } from "zod";
import { brandOf } from "../../src/branding";
import type { AuthContext } from "../../src/context";
import { AuthError } from "../../src/errors";
import { assertTrustedOrigin, clearSessionCookies, sessionCookies, setSessionCookies } from "../../src/sessions/cookies";
import { hasRecentProof } from "../../src/sessions/step-up";
import { authGuard } from "../../src/sessions/guard";
import type { SignInResult } from "../../src/context";
import type { TokenResponse } from "../../src/sessions/service";
import { acceptInvitation, validateInvitation } from "../invitations/service";
import { requestCode, verifyCode } from "../magic-code/service";
import { recoverWithCode, verifyMfa } from "../mfa/service";
import { changePassword, forgotPassword, isResetTokenValid, login, register, resendVerification, resetPassword, verifyEmail } from "../password/service";
import {
  AcceptInvitationPage,
  AccountPage,
  EmailCodePage,
  ForgotPasswordPage,
  type FormErrors,
  MessagePage,
  MfaPage,
  noErrors,
  type PageFrame,
  renderPage,
  ResetPasswordPage,
  SignInPage,
  SignUpPage,
  VerifyEmailPage,
} from "./pages";
import { requireEmail } from "../../src/users";
import { afterSignIn, appIsThisServer, contentSecurityPolicy, formErrorsOf, type PageSession, pageSession, required, uiBase } from "./service";
import { stylesheet } from "./style";
import { teamsApi } from "../teams/api";

/** A form as Elysia parses it: strings, or arrays of them for repeated keys; only the first of each counts. */
const formBody = z.record(z.string(), z.union([z.string().max(4096), z.array(z.string().max(4096))])).optional();
type Form = Record<string, string | undefined>;
const firstValues = (body: z.output<typeof formBody>): Form =>
  Object.fromEntries(Object.entries(body ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
const query = z.object({ redirectTo: z.string().max(2048).optional(), email: z.string().max(320).optional(), token: z.string().max(512).optional() });
const hidden = { detail: { hide: true } };

/**
 * Server-rendered pages under AUTH_BASE_PATH/ui/: plain HTML forms that post here and work without JavaScript,
 * signed in by the browser-session cookies, with the same CSRF rule as the API. Routes are thin: the flows are the
 * plugins' own services.
 */
export function hostedUiPlugin(ctx: AuthContext) {
  // The invitation pages use invitations through the teams API it depends on, as its routes do.
  const teams = teamsApi();
  const { config } = ctx;
  const base = uiBase(config);
  const css = stylesheet(brandOf(config));
  const cssVersion = Bun.hash(css).toString(36);
  const enabled = (name: string) => config.plugins.has(name as never);
  const frame: PageFrame = {
    brand: brandOf(config),
    base,
    stylesheet: `${base}/assets/style.css?v=${cssVersion}`,
    acceptUrl: `${config.publicUrl}${base}/accept-invitation`,
    emailCode: enabled("magic-code"),
  };
  const csp = contentSecurityPolicy(config);
  const cookies = sessionCookies(config);

  const page = (element: ReactNode, status = 200) =>
    new Response(renderPage(element), {
      status,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": csp,
        "x-frame-options": "DENY",
        // With no-referrer (the API's policy) a browser sends `Origin: null` on the page's own form posts, which the CSRF
        // rule refuses; same-origin keeps the origin for this server and still gives nothing (a reset token in the
        // URL included) to any other.
        "referrer-policy": "same-origin",
      },
    });
  const seeOther = (location: string) => new Response(null, { status: 303, headers: { location } });
  const signedInTo = (jar: Parameters<typeof setSessionCookies>[0], response: TokenResponse, redirectTo: string | undefined) => {
    setSessionCookies(jar, config, response);
    return seeOther(afterSignIn(config, redirectTo));
  };
  /** The end of a first factor: signed in, or (MFA on) the second step's page, which carries the challenge on. */
  const afterFirstFactor = (jar: Parameters<typeof setSessionCookies>[0], result: SignInResult, redirectTo: string | undefined) =>
    "mfaRequired" in result
      ? page(<MfaPage frame={frame} errors={noErrors} mfaToken={result.mfaToken} methods={result.methods} redirectTo={redirectTo} />)
      : signedInTo(jar, result, redirectTo);
  /** Every form post: refused (an HTML page, not JSON) unless it comes from a trusted origin, as the API's rule. */
  const fromTrustedPage = (request: Request): Response | undefined => {
    try {
      assertTrustedOrigin(request, cookies);
      return undefined;
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      return page(<MessagePage frame={frame} title="Request refused" message={error.message} link={{ href: `${base}/sign-in`, label: "Go to sign in" }} />, error.status);
    }
  };
  /** Runs a form's action; an API error shows on the form again, by its message, instead of as JSON. */
  const orShowErrors = async (run: () => Promise<Response>, showAgain: (errors: FormErrors, status: number) => Response) => {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof AuthError) || error.status >= 500) throw error;
      return showAgain(formErrorsOf(error), error.status);
    }
  };

  const accountPage = async (signedIn: PageSession, errors: FormErrors, status: number, notice?: string) => {
    const sessions = await ctx.sessions.list(signedIn.user.id, signedIn.auth.sessionId);
    return page(<AccountPage frame={frame} user={signedIn.user} hasPassword={signedIn.user.passwordHash !== null} sessions={sessions} errors={errors} notice={notice} />, status);
  };

  const signInPage = (opts: { errors?: FormErrors; email?: string; redirectTo?: string; notice?: string }, status = 200) =>
    page(<SignInPage frame={frame} errors={opts.errors ?? noErrors} email={opts.email} redirectTo={opts.redirectTo} notice={opts.notice} signUp={enabled("password")} />, status);

  return new Elysia({ name: "plugin.hosted-ui", seed: ctx.id, prefix: "/ui" })
    .use(authGuard(ctx))
    // Every form post of these pages changes something or signs someone in: one check, before any of their handlers.
    .onBeforeHandle(({ request }) => (request.method === "POST" ? fromTrustedPage(request) : undefined))
    .get(
      "/assets/style.css",
      ({ set }) => {
        set.headers["content-type"] = "text/css; charset=utf-8";
        set.headers["cache-control"] = "public, max-age=31536000, immutable";
        return css;
      },
      hidden,
    )
    .get(
      "/sign-in",
      async ({ request, cookie, meta, query }) => {
        if (await pageSession(ctx, request, cookie, meta)) return seeOther(afterSignIn(config, query.redirectTo));
        const notice = SIGN_IN_NOTICES[new URL(request.url).searchParams.get("notice") ?? ""];
        return signInPage({ redirectTo: query.redirectTo, notice });
      },
      { query, ...hidden },
    )
    .post(
      "/sign-in",
      async ({ cookie, meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const password = form.password ?? "";
        if (!password) errors.fields.password = "Enter your password";
        const again = (e: FormErrors, status: number) => signInPage({ errors: e, email, redirectTo: form.redirectTo }, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(async () => {
          return afterFirstFactor(cookie, await login(ctx, { email, password }, meta), form.redirectTo);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/mfa",
      async ({ cookie, meta, body }) => {
        const form = firstValues(body);
        const mfaToken = form.mfaToken ?? "";
        const recoveryCode = form.recoveryCode?.trim();
        const code = form.code?.trim();
        const again = (e: FormErrors, status: number) =>
          page(<MfaPage frame={frame} errors={e} mfaToken={mfaToken} methods={["totp", "recovery_code"]} redirectTo={form.redirectTo} />, status);
        if (!recoveryCode && !code) return again({ fields: { code: "Enter the 6-digit code from your app" } }, 400);
        try {
          const result = recoveryCode ? await recoverWithCode(ctx, { mfaToken, recoveryCode, meta }) : await verifyMfa(ctx, { mfaToken, code: code ?? "", meta });
          return signedInTo(cookie, result, form.redirectTo);
        } catch (error) {
          if (!(error instanceof AuthError) || error.status >= 500) throw error;
          // A spent or expired challenge cannot be retried: the first factor starts again.
          if (error.status === 401) return signInPage({ errors: { form: "The sign-in took too long or had too many tries. Sign in again.", fields: {} } }, 401);
          return again({ fields: { [recoveryCode ? "recoveryCode" : "code"]: error.message } }, error.status);
        }
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/sign-in/code",
      async ({ request, cookie, meta, query }) => {
        if (!enabled("magic-code")) return seeOther(`${base}/sign-in`);
        if (await pageSession(ctx, request, cookie, meta)) return seeOther(afterSignIn(config, query.redirectTo));
        return page(<EmailCodePage frame={frame} errors={noErrors} sent={false} redirectTo={query.redirectTo} />);
      },
      { query, ...hidden },
    )
    .post(
      "/sign-in/code",
      async ({ meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const again = (e: FormErrors, status: number) => page(<EmailCodePage frame={frame} errors={e} email={email} sent={false} redirectTo={form.redirectTo} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(async () => {
          const canonical = requireEmail(email);
          await requestCode(ctx, { email: canonical, dashboard: false, meta });
          return page(<EmailCodePage frame={frame} errors={noErrors} email={canonical} sent redirectTo={form.redirectTo} />);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/sign-in/code/verify",
      async ({ cookie, meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = form.email ?? "";
        const code = required(form, "code", errors, "Enter the 6-digit code from the email");
        const again = (e: FormErrors, status: number) => page(<EmailCodePage frame={frame} errors={e} email={email} sent redirectTo={form.redirectTo} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(
          async () => afterFirstFactor(cookie, await verifyCode(ctx, { email: requireEmail(email), code, auth: null, meta }), form.redirectTo),
          again,
        );
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/accept-invitation",
      async ({ request, cookie, meta, query }) => {
        const token = query.token ?? "";
        const invitation = token && enabled("invitations") ? await validateInvitation(ctx, teams, token) : { valid: false };
        const signedIn = invitation.valid ? await pageSession(ctx, request, cookie, meta) : null;
        return page(<AcceptInvitationPage frame={frame} errors={noErrors} token={token} invitation={invitation} signedInAs={signedIn?.user.email} />, invitation.valid ? 200 : 400);
      },
      { query, ...hidden },
    )
    .post(
      "/accept-invitation",
      async ({ request, cookie, meta, body }) => {
        const form = firstValues(body);
        const token = form.token ?? "";
        const signedIn = await pageSession(ctx, request, cookie, meta);
        const invitation = await validateInvitation(ctx, teams, token);
        const invitedHere = signedIn !== null && signedIn.user.email === invitation.email;
        const again = (e: FormErrors, status: number) =>
          page(<AcceptInvitationPage frame={frame} errors={e} token={token} invitation={invitation} signedInAs={signedIn?.user.email} values={form} />, status);
        if (!invitedHere && !form.password) return again({ fields: { password: "Choose a password" } }, 400);
        return orShowErrors(async () => {
          const result = await acceptInvitation(ctx, teams, {
            token,
            password: invitedHere ? undefined : form.password,
            firstName: form.firstName?.trim() || null,
            lastName: form.lastName?.trim() || null,
            auth: invitedHere ? signedIn.auth : null,
            meta,
          });
          return signedInTo(cookie, result, undefined);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/sign-up",
      async ({ request, cookie, meta, query }) => {
        if (!enabled("password")) return seeOther(`${base}/sign-in`);
        if (await pageSession(ctx, request, cookie, meta)) return seeOther(afterSignIn(config, query.redirectTo));
        return page(<SignUpPage frame={frame} errors={noErrors} values={{}} redirectTo={query.redirectTo} />);
      },
      { query, ...hidden },
    )
    .post(
      "/sign-up",
      async ({ cookie, meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const password = form.password ?? "";
        if (!password) errors.fields.password = "Choose a password";
        const values = { email, firstName: form.firstName, lastName: form.lastName };
        const again = (e: FormErrors, status: number) => page(<SignUpPage frame={frame} errors={e} values={values} redirectTo={form.redirectTo} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(async () => {
          const input = { email, password, confirmPassword: form.confirmPassword ?? "", firstName: form.firstName?.trim() || undefined, lastName: form.lastName?.trim() || undefined };
          const result = await register(ctx, input, null, meta);
          if (result.status === 202) {
            const next = new URLSearchParams({ email });
            if (form.redirectTo) next.set("redirectTo", form.redirectTo);
            return seeOther(`${base}/verify-email?${next}`);
          }
          return afterFirstFactor(cookie, result.body, form.redirectTo);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/verify-email",
      ({ query }) => page(<VerifyEmailPage frame={frame} errors={noErrors} email={query.email} redirectTo={query.redirectTo} />),
      { query, ...hidden },
    )
    .post(
      "/verify-email",
      async ({ cookie, meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const code = required(form, "code", errors, "Enter the 6-digit code from the email");
        const again = (e: FormErrors, status: number) => page(<VerifyEmailPage frame={frame} errors={e} email={email} redirectTo={form.redirectTo} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(async () => {
          return afterFirstFactor(cookie, await verifyEmail(ctx, { email, code }, meta), form.redirectTo);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/verify-email/resend",
      async ({ meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const shown = (e: FormErrors, status: number, notice?: string) =>
          page(<VerifyEmailPage frame={frame} errors={e} email={email} redirectTo={form.redirectTo} notice={notice} />, status);
        if (Object.keys(errors.fields).length > 0) return shown(errors, 400);
        return orShowErrors(async () => {
          await resendVerification(ctx, { email }, meta);
          return shown(noErrors, 200, "If this address still needs confirming, a new code is on its way.");
        }, shown);
      },
      { body: formBody, ...hidden },
    )
    .get("/forgot-password", () => page(<ForgotPasswordPage frame={frame} errors={noErrors} />), hidden)
    .post(
      "/forgot-password",
      async ({ meta, body }) => {
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const email = required(form, "email", errors, "Enter your email address");
        const again = (e: FormErrors, status: number) => page(<ForgotPasswordPage frame={frame} errors={e} email={email} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        return orShowErrors(async () => {
          await forgotPassword(ctx, { email }, meta);
          return page(<ForgotPasswordPage frame={frame} errors={noErrors} email={email} sent />);
        }, again);
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/reset-password",
      async ({ query }) => {
        const valid = query.token ? await isResetTokenValid(ctx, { token: query.token }) : false;
        return page(<ResetPasswordPage frame={frame} errors={noErrors} token={query.token} valid={valid} />, valid ? 200 : 400);
      },
      { query, ...hidden },
    )
    .post(
      "/reset-password",
      async ({ meta, body }) => {
        const form = firstValues(body);
        const token = form.token ?? "";
        const newPassword = form.newPassword ?? "";
        const errors: FormErrors = { fields: {} };
        if (!newPassword) errors.fields.newPassword = "Choose a new password";
        else if (newPassword !== form.confirmPassword) errors.fields.confirmPassword = "The passwords do not match";
        const again = (e: FormErrors, status: number, valid = true) => page(<ResetPasswordPage frame={frame} errors={e} token={token} valid={valid} />, status);
        if (Object.keys(errors.fields).length > 0) return again(errors, 400);
        try {
          await resetPassword(ctx, { token, newPassword }, meta);
          return seeOther(`${base}/sign-in?notice=password-reset`);
        } catch (error) {
          if (!(error instanceof AuthError) || error.status >= 500) throw error;
          // A weak choice does not spend the link: it shows next to the field, and the form stays.
          if (error.code === "WEAK_PASSWORD") return again({ fields: { newPassword: error.message } }, 400);
          return again(formErrorsOf(error), error.status, error.code !== "INVALID_TOKEN");
        }
      },
      { body: formBody, ...hidden },
    )
    .get(
      "/account",
      async ({ request, cookie, meta }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const notice = NOTICES[new URL(request.url).searchParams.get("notice") ?? ""];
        return accountPage(signedIn, noErrors, 200, notice);
      },
      hidden,
    )
    .post(
      "/account/profile",
      async ({ request, cookie, meta, body }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        const firstName = (form.firstName ?? "").trim();
        const lastName = (form.lastName ?? "").trim();
        if (firstName.length > 100) errors.fields.firstName = "At most 100 characters";
        if (lastName.length > 100) errors.fields.lastName = "At most 100 characters";
        if (Object.keys(errors.fields).length > 0) return accountPage({ ...signedIn, user: { ...signedIn.user, firstName, lastName } }, errors, 400);
        await ctx.users.update(signedIn.user.id, { firstName: firstName || null, lastName: lastName || null });
        await ctx.audit.record({ type: "profile_updated", userId: signedIn.user.id, meta, data: { fields: ["firstName", "lastName"] } });
        return seeOther(`${base}/account?notice=profile`);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/account/sessions/:id/revoke",
      async ({ request, cookie, meta, params }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const session = await ctx.sessions.findOwned(signedIn.user.id, params.id);
        if (session && session.id !== signedIn.auth.sessionId) {
          await ctx.sessions.revoke(session.id, "revoked_by_user");
          await ctx.audit.record({ type: "session_revoked", userId: signedIn.user.id, meta, data: { sessionId: session.id } });
        }
        return seeOther(`${base}/account?notice=session-revoked`);
      },
      { params: z.object({ id: z.string().max(64) }), body: formBody, ...hidden },
    )
    .post(
      "/account/sessions/revoke-others",
      async ({ request, cookie, meta }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const count = await ctx.sessions.revokeAll(signedIn.user.id, signedIn.auth.sessionId, "revoked_by_user");
        await ctx.audit.record({ type: "session_revoked", userId: signedIn.user.id, meta, data: { others: count } });
        return seeOther(`${base}/account?notice=sessions-revoked`);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/account/password",
      async ({ request, cookie, meta, body }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const form = firstValues(body);
        const errors: FormErrors = { fields: {} };
        if (!form.currentPassword) errors.fields.currentPassword = "Enter your current password";
        if (!form.newPassword) errors.fields.newPassword = "Choose a new password";
        if (Object.keys(errors.fields).length > 0) return accountPage(signedIn, errors, 400);
        try {
          await changePassword(ctx, signedIn.auth, { currentPassword: form.currentPassword ?? "", newPassword: form.newPassword ?? "", confirmPassword: form.confirmPassword ?? "" }, meta);
          return seeOther(`${base}/account?notice=password`);
        } catch (error) {
          if (!(error instanceof AuthError) || error.status >= 500) throw error;
          const shown = formErrorsOf(error, { password: "newPassword" });
          // A wrong current password is about that field, not the form.
          if (error.code === "INVALID_CREDENTIALS") return accountPage(signedIn, { fields: { currentPassword: "The current password is not right" } }, error.status);
          return accountPage(signedIn, shown, error.status);
        }
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/account/delete",
      async ({ request, cookie, meta, body }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const form = firstValues(body);
        // Deleting is for good: it takes a proof of a factor, the password, or else a sign-in of the last minutes.
        if (signedIn.user.passwordHash !== null) {
          if (!(await ctx.passwords.verify(form.deletePassword ?? "", signedIn.user.passwordHash))) {
            return accountPage(signedIn, { fields: { deletePassword: "The password is not right" } }, 401);
          }
        } else if (!hasRecentProof(ctx, signedIn.auth)) {
          // Step-up's own rule (auth_time within REAUTH_MAX_AGE_S), as DELETE /auth/me applies it.
          return accountPage(signedIn, { form: "Sign out and sign in again, then delete the account within 5 minutes.", fields: {} }, 403);
        }
        await ctx.sessions.deleteUser(signedIn.user.id);
        await ctx.audit.record({ type: "account_deleted", userId: signedIn.user.id, meta });
        clearSessionCookies(cookie, config);
        return seeOther(`${base}/sign-in?notice=account-deleted`);
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/sign-out",
      async ({ request, cookie, meta }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (signedIn) {
          await ctx.sessions.revoke(signedIn.auth.sessionId, "logout");
          await ctx.audit.record({ type: "logout", userId: signedIn.user.id, meta, data: { sessionId: signedIn.auth.sessionId } });
        }
        clearSessionCookies(cookie, config);
        return seeOther(`${base}/sign-in`);
      },
      { body: formBody, ...hidden },
    );
}

const SIGN_IN_NOTICES: Record<string, string> = {
  "password-reset": "Your password was changed. Sign in with the new one.",
  "account-deleted": "Your account was deleted.",
};

const NOTICES: Record<string, string> = {
  profile: "Your profile was saved.",
  password: "Your password was changed; every other session was signed out.",
  "session-revoked": "That session was signed out.",
  "sessions-revoked": "Every other session was signed out.",
};

/**
 * When APP_URL is this server, the paths of emailed links (and `/`) answer here too, so every link works out of the box.
 * Mounted at the root, outside AUTH_BASE_PATH.
 */
export function hostedUiLinks(ctx: AuthContext) {
  const { config } = ctx;
  const base = uiBase(config);
  const app = new Elysia({ name: "plugin.hosted-ui.links", seed: ctx.id });
  if (!config.HOSTED_UI || !appIsThisServer(config)) return app;
  const forward = (target: string) => ({ request }: { request: Request }) => {
    const search = new URL(request.url).search;
    return new Response(null, { status: 302, headers: { location: `${target}${search}` } });
  };
  return app
    .get("/", forward(`${base}/sign-in`), hidden)
    .get(config.PASSWORD_RESET_PATH, forward(`${base}/reset-password`), hidden)
    .get(config.INVITATION_PATH, forward(`${base}/accept-invitation`), hidden);
}
