import { type Cookie, Elysia } from "elysia";
import type { ReactNode } from "react";
import { z } from "zod";
import { brandOf } from "../src/branding";
import type { AuthContext, ReauthProof, SignInResult } from "../src/context";
import { AuthError, errors as apiErrors } from "../src/errors";
import { reauthenticate, sendReauthCode } from "../src/reauth";
import type { RequestMeta } from "../src/request";
import { assertTrustedOrigin, clearSessionCookies, sessionCookies, setSessionCookies } from "../src/sessions/cookies";
import { authGuard } from "../src/sessions/guard";
import type { TokenResponse } from "../src/sessions/service";
import { assertRecentProof, type StepUpMode } from "../src/sessions/step-up";
import { requireEmail } from "../src/users";
import { acceptInvitation, validateInvitation } from "../plugins/invitations/service";
import { requestCode, verifyCode } from "../plugins/magic-code/service";
import { authenticationResponseSchema, registrationResponseSchema } from "../plugins/mfa/index";
import { deletePasskey, listPasskeys, loginWithPasskey, registerPasskey, registrationOptions, renamePasskey } from "../plugins/mfa/passkeys";
import { looksLikeRecoveryCode } from "../plugins/mfa/recovery";
import { confirmTotp, disableMfa, recoverWithCode, regenerateRecoveryCodes, setupTotp, verifyMfa } from "../plugins/mfa/service";
import { OAUTH_ERRORS } from "../plugins/oauth/errors";
import { createProviders } from "../plugins/oauth/providers";
import { listAccounts, redeemExchangeCode, startFlow, unlinkAccount } from "../plugins/oauth/service";
import {
  changePassword,
  confirmEmailChange,
  forgotPassword,
  isResetTokenValid,
  login,
  register,
  requestEmailChange,
  resendVerification,
  resetPassword,
  verifyEmail,
} from "../plugins/password/service";
import { teamsApi } from "../plugins/teams/api";
import { clientScript } from "./client";
import {
  AcceptInvitationPage,
  AccountPage,
  type AccountView,
  ContinuePage,
  EmailChangePage,
  EmailCodePage,
  ForgotPasswordPage,
  type FormErrors,
  MessagePage,
  MfaPage,
  noErrors,
  type PageFrame,
  PasskeyAddPage,
  RecoveryCodesPage,
  ReauthPage,
  renderPage,
  ResetPasswordPage,
  SignInPage,
  SignUpPage,
  TotpSetupPage,
  VerifyEmailPage,
} from "./pages";
import { afterSignIn, appIsThisServer, setCookieLine, contentSecurityPolicy, formErrorsOf, type PageSession, pageSession, uiBase } from "./service";
import { stylesheet } from "./style";

/** A form as Elysia parses it: strings, or arrays of them for repeated keys; only the first of each counts. */
const formBody = z.record(z.string(), z.union([z.string().max(16_384), z.array(z.string().max(16_384))])).optional();
type Form = Record<string, string | undefined>;
const firstValues = (body: z.output<typeof formBody>): Form =>
  Object.fromEntries(Object.entries(body ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
const query = z.object({
  redirectTo: z.string().max(2048).optional(),
  next: z.string().max(2048).optional(),
  email: z.string().max(320).optional(),
  token: z.string().max(512).optional(),
  code: z.string().max(512).optional(),
  error: z.string().max(64).optional(),
  linked: z.string().max(64).optional(),
});
const hidden = { detail: { hide: true } };

type CookieJar = Record<string, Cookie<unknown>>;
/** One form post, as every handler here sees it. */
type Post = { form: Form; cookie: CookieJar; meta: RequestMeta; request: Request; params: Record<string, string> };
type PostContext = { cookie: CookieJar; meta: RequestMeta; body: z.output<typeof formBody>; request: Request; params?: Record<string, string> };

/** Fields kept as typed (never trimmed) and never carried through a step-up prompt. */
const SECRET_FIELDS = new Set(["password", "newPassword", "confirmPassword", "currentPassword", "deletePassword", "emailPassword"]);

/** The "required" check of a form: trims the text fields it names in place, and answers an error per empty one. */
function missingFields(form: Form, required: Record<string, string> = {}): FormErrors {
  const errors: FormErrors = { fields: {} };
  for (const [name, message] of Object.entries(required)) {
    const value = SECRET_FIELDS.has(name) ? (form[name] ?? "") : (form[name]?.trim() ?? "");
    form[name] = value;
    if (!value) errors.fields[name] = message;
  }
  return errors;
}
const hasErrors = (errors: FormErrors) => errors.form !== undefined || Object.keys(errors.fields).length > 0;

/** What one form of a page does: its required fields, its work, and how it shows itself again with errors. */
type FormSpec = {
  required?: Record<string, string>;
  /** Where errors of the API show: a field per error code or detail path (default: formErrorsOf's). */
  errorsAt?: (form: Form) => Record<string, string>;
  again: (form: Form, errors: FormErrors, status: number) => Response | Promise<Response>;
  run: (post: Post) => Promise<Response>;
};

/** An account form: signed in only; `stepUp` as the API route it stands for (a prompt to re-authenticate, then on). */
type AccountSpec = {
  stepUp?: StepUpMode;
  required?: Record<string, string>;
  errorsAt?: (form: Form) => Record<string, string>;
  again?: (signedIn: PageSession, form: Form, errors: FormErrors, status: number) => Response | Promise<Response>;
  run: (signedIn: PageSession, post: Post) => Promise<Response>;
};

/** A wrong password in an account form is about its field, and said so (the API's message speaks of the email too). */
async function passwordCheckedAt<T>(field: string, message: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof AuthError && error.code === "INVALID_CREDENTIALS") throw new AuthError(error.status, error.code, message, [{ path: field, message }]);
    throw error;
  }
}

const PROVIDER_LABELS: Record<string, string> = { google: "Google", github: "GitHub", microsoft: "Microsoft", facebook: "Facebook", oidc: "single sign-on" };
const flowErrorMessage = (code: string) =>
  (OAUTH_ERRORS as Record<string, { message: string }>)[code]?.message ?? "Signing in with the provider did not work. Try again.";

/**
 * Server-rendered pages under AUTH_BASE_PATH/ui/: plain HTML forms that post here and work without JavaScript
 * (passkeys excepted, which a small script of this server drives), signed in by the browser-session cookies, with the
 * same CSRF rule and the same step-up rule as the API. Routes are thin: the flows are the plugins' own services.
 */
export function hostedUiPlugin(ctx: AuthContext) {
  // The invitation pages use invitations through the teams API it depends on, as its routes do.
  const teams = teamsApi();
  const { config } = ctx;
  const base = uiBase(config);
  const css = stylesheet(brandOf(config));
  const version = (text: string) => Bun.hash(text).toString(36);
  const enabled = (name: string) => config.plugins.has(name as never);
  const providers = enabled("oauth") ? createProviders(config, () => ctx.clock.now()) : new Map();
  const frame: PageFrame = {
    brand: brandOf(config),
    base,
    api: config.AUTH_BASE_PATH,
    stylesheet: `${base}/assets/style.css?v=${version(css)}`,
    script: `${base}/assets/passkeys.js?v=${version(clientScript)}`,
    acceptUrl: `${config.publicUrl}${base}/accept-invitation`,
    emailCode: enabled("magic-code"),
    passkeys: enabled("mfa"),
    providers: [...providers.keys()].map((id) => ({ id, label: PROVIDER_LABELS[id] ?? id })),
  };
  const csp = contentSecurityPolicy(config, { script: false });
  const scriptedCsp = contentSecurityPolicy(config, { script: true });

  const page = async (element: ReactNode, status = 200) => {
    const html = await renderPage(element);
    return new Response(html, {
      status,
      headers: {
        "content-type": "text/html; charset=utf-8",
        // Only a page that loads the passkey script may run script (this server's file) and fetch (this server).
        "content-security-policy": html.includes(`<script src="${frame.script}"`) ? scriptedCsp : csp,
        "x-frame-options": "DENY",
        // With no-referrer (the API's policy) a browser sends `Origin: null` on the page's own form posts, which the CSRF
        // rule refuses; same-origin keeps the origin for this server and still gives nothing (a reset token in the
        // URL included) to any other.
        "referrer-policy": "same-origin",
      },
    });
  };
  const cookies = sessionCookies(config);
  /** Every form post: refused (an HTML page, not JSON) unless it comes from a trusted origin, as the API's rule. */
  const fromTrustedPage = (request: Request): Promise<Response> | undefined => {
    try {
      assertTrustedOrigin(request, cookies);
      return undefined;
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      return page(<MessagePage frame={frame} title="Request refused" message={error.message} link={{ href: `${base}/sign-in`, label: "Go to sign in" }} />, error.status);
    }
  };
  const seeOther = (location: string, headers: Record<string, string> = {}) => new Response(null, { status: 303, headers: { location, ...headers } });
  const signedInTo = (jar: CookieJar, response: TokenResponse, redirectTo: string | undefined) => {
    setSessionCookies(jar, config, response);
    return seeOther(afterSignIn(config, redirectTo));
  };
  /** The end of a first factor: signed in, or (MFA on) the second step's page, which carries the challenge on. */
  const afterFirstFactor = (jar: CookieJar, result: SignInResult, redirectTo: string | undefined) =>
    "mfaRequired" in result
      ? page(<MfaPage frame={frame} errors={noErrors} mfaToken={result.mfaToken} methods={result.methods} redirectTo={redirectTo} />)
      : signedInTo(jar, result, redirectTo);
  /** An API error (not a server fault) as a form shows it; anything else goes on up. */
  const shownErrors = (error: unknown, errorsAt: Record<string, string> = {}): { errors: FormErrors; status: number } => {
    if (!(error instanceof AuthError) || error.status >= 500) throw error;
    return { errors: formErrorsOf(error, errorsAt), status: error.status };
  };

  /** The one shape of every form post: required fields, then the work; an API error shows on the form again. */
  const formPost =
    (spec: FormSpec) =>
    async ({ cookie, meta, body, request, params }: PostContext) => {
      const form = firstValues(body);
      const missing = missingFields(form, spec.required);
      if (hasErrors(missing)) return spec.again(form, missing, 400);
      try {
        return await spec.run({ form, cookie, meta, request, params: params ?? {} });
      } catch (error) {
        const shown = shownErrors(error, spec.errorsAt?.(form));
        return spec.again(form, shown.errors, shown.status);
      }
    };

  const accountView = async (signedIn: PageSession): Promise<AccountView> => {
    const userId = signedIn.user.id;
    const [sessions, passkeys, accounts, activity] = await Promise.all([
      ctx.sessions.list(userId, signedIn.auth.sessionId),
      enabled("mfa") ? listPasskeys(ctx, userId) : null,
      providers.size > 0 ? listAccounts(ctx, userId) : null,
      ctx.audit.listForUser(userId, { limit: 10 }),
    ]);
    return {
      user: signedIn.user,
      hasPassword: signedIn.user.passwordHash !== null,
      sessions,
      mfa: enabled("mfa"),
      passkeys,
      linked: accounts && frame.providers.map((p) => ({ ...p, email: accounts.find((a) => a.provider === p.id)?.email ?? null, linked: accounts.some((a) => a.provider === p.id) })),
      activity: activity.map((e) => ({ id: e.id, type: e.type, ip: e.ip, userAgent: e.userAgent, createdAt: e.createdAt.toISOString() })),
    };
  };
  const accountPage = async (signedIn: PageSession, errors: FormErrors, status: number, notice?: string) =>
    page(<AccountPage frame={frame} view={await accountView(signedIn)} errors={errors} notice={notice} />, status);

  const signInPage = (opts: { errors?: FormErrors; email?: string; redirectTo?: string; notice?: string }, status = 200) =>
    page(<SignInPage frame={frame} errors={opts.errors ?? noErrors} email={opts.email} redirectTo={opts.redirectTo} notice={opts.notice} signUp={enabled("password")} />, status);

  // Step-up: the account forms that stand for a step-up route, by path, so a re-authentication can run the one asked for.
  const stepUpForms = new Map<string, AccountSpec>();
  const reauthPage = async (signedIn: PageSession, action: string, form: Form, errors: FormErrors, status: number, codeSent = false) => {
    const { user } = signedIn;
    const passkeys = enabled("mfa") ? (await listPasskeys(ctx, user.id)).length > 0 : false;
    const methods = { password: user.passwordHash !== null && !user.mfaEnabled, totp: user.mfaEnabled, passkey: passkeys, emailCode: !user.mfaEnabled && user.email !== null };
    const carried = Object.fromEntries(Object.entries(form).filter(([k, v]) => v !== undefined && !SECRET_FIELDS.has(k) && k !== "continue" && !k.startsWith("carry.")) as [string, string][]);
    return page(<ReauthPage frame={frame} errors={errors} methods={methods} action={action} carried={carried} codeSent={codeSent} />, status);
  };
  const runAccountForm = async (path: string, spec: AccountSpec, signedIn: PageSession, post: Post): Promise<Response> => {
    const again = (errors: FormErrors, status: number) => (spec.again ? spec.again(signedIn, post.form, errors, status) : accountPage(signedIn, errors, status));
    try {
      // Checked first, as the API checks it before the body.
      if (spec.stepUp) await assertRecentProof(ctx, signedIn.auth, spec.stepUp);
      const missing = missingFields(post.form, spec.required);
      if (hasErrors(missing)) return again(missing, 400);
      return await spec.run(signedIn, post);
    } catch (error) {
      if (error instanceof AuthError && error.code === "REAUTH_REQUIRED" && spec.stepUp) return reauthPage(signedIn, path, post.form, noErrors, 403);
      const shown = shownErrors(error, spec.errorsAt?.(post.form));
      return again(shown.errors, shown.status);
    }
  };
  const accountPost = (path: string, spec: AccountSpec) => {
    if (spec.stepUp) stepUpForms.set(path, spec);
    return async ({ cookie, meta, body, request, params }: PostContext) => {
      const signedIn = await pageSession(ctx, request, cookie, meta);
      if (!signedIn) return seeOther(`${base}/sign-in`);
      return runAccountForm(path, spec, signedIn, { form: firstValues(body), cookie, meta, request, params: params ?? {} });
    };
  };
  /** An account form's route, as `.post(...accountRoute(path, spec))`: its path, its handler and its form body. */
  const accountRoute = <const Path extends string>(path: Path, spec: AccountSpec) => [path, accountPost(path, spec), { body: formBody, ...hidden }] as const;
  const backToAccount = (notice: string) => seeOther(`${base}/account?notice=${notice}`);
  const totpSetupPage = async (otpauthUrl: string, errors: FormErrors, status = 200) => {
    const secret = URL.canParse(otpauthUrl) ? (new URL(otpauthUrl).searchParams.get("secret") ?? "") : "";
    const qrCode = await (await import("qrcode")).default.toDataURL(otpauthUrl, { errorCorrectionLevel: "M" });
    return page(<TotpSetupPage frame={frame} errors={errors} otpauthUrl={otpauthUrl} secret={secret} qrCode={qrCode} />, status);
  };
  const passkeyAddPage = async (signedIn: PageSession, errors: FormErrors, status = 200) =>
    page(<PasskeyAddPage frame={frame} errors={errors} options={JSON.stringify(await registrationOptions(ctx, signedIn.user.id))} />, status);
  /** A credential the passkey script posted, as JSON in a form field; unreadable is the script's absence. */
  const postedCredential = <T extends z.ZodType>(schema: T, raw: string | undefined): z.output<T> => {
    let value: unknown;
    try {
      value = JSON.parse(raw ?? "");
    } catch {
      value = undefined;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw apiErrors.validation([{ path: "passkey", message: "No passkey came with the form: passkeys need JavaScript" }]);
    return parsed.data;
  };

  return new Elysia({ name: "plugin.hosted-ui", seed: ctx.id, prefix: "/ui" })
    .use(authGuard(ctx))
    // Every form post of these pages changes something or signs someone in: one check, before any of their handlers.
    .onBeforeHandle(async ({ request }) => (request.method === "POST" ? fromTrustedPage(request) : undefined))
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
      "/assets/passkeys.js",
      ({ set }) => {
        set.headers["content-type"] = "text/javascript; charset=utf-8";
        set.headers["cache-control"] = "public, max-age=31536000, immutable";
        return clientScript;
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
      formPost({
        required: { email: "Enter your email address", password: "Enter your password" },
        again: (form, errors, status) => signInPage({ errors, email: form.email, redirectTo: form.redirectTo }, status),
        run: async ({ form, cookie, meta }) => afterFirstFactor(cookie, await login(ctx, { email: form.email ?? "", password: form.password ?? "" }, meta), form.redirectTo),
      }),
      { body: formBody, ...hidden },
    )
    .post(
      "/sign-in/passkey",
      formPost({
        errorsAt: () => ({ PASSKEY_INVALID: "passkey", INVALID_CHALLENGE: "passkey" }),
        again: (form, errors, status) => signInPage({ errors, redirectTo: form.redirectTo }, status),
        run: async ({ form, cookie, meta }) => {
          const response = postedCredential(authenticationResponseSchema, form.response);
          return signedInTo(cookie, await loginWithPasskey(ctx, { challengeId: form.challengeId ?? "", response, meta }), form.redirectTo);
        },
      }),
      { body: formBody, ...hidden },
    )
    .get(
      "/oauth/done",
      async ({ cookie, meta, query }) => {
        if (query.error || !query.code) return signInPage({ errors: { form: flowErrorMessage(query.error ?? ""), fields: {} }, redirectTo: query.next }, 400);
        try {
          return afterFirstFactor(cookie, await redeemExchangeCode(ctx, query.code, meta), query.next);
        } catch (error) {
          return signInPage({ ...shownErrors(error), redirectTo: query.next }, 400);
        }
      },
      { query, ...hidden },
    )
    .get(
      "/oauth/:provider",
      async ({ params, query }) => {
        // The flow comes back to the page below, which signs the browser in and goes on to redirectTo.
        const done = `${base}/oauth/done${query.redirectTo ? `?${new URLSearchParams({ next: query.redirectTo })}` : ""}`;
        try {
          const flow = await startFlow(ctx, providers, { providerId: params.provider, redirectTo: undefined, auth: null, link: false, ownPage: done });
          return new Response(null, { status: 302, headers: { location: flow.url, "set-cookie": flow.cookie } });
        } catch (error) {
          const shown = shownErrors(error);
          return signInPage({ errors: shown.errors, redirectTo: query.redirectTo }, shown.status);
        }
      },
      { params: z.object({ provider: z.string().max(32) }), query, ...hidden },
    )
    .get(
      "/mfa",
      // The second step is the answer to the first (its challenge travels in the form, never in a URL): opened on its
      // own, it starts from the first step, or from where a signed-in browser goes.
      async ({ request, cookie, meta, query }) => {
        if (await pageSession(ctx, request, cookie, meta)) return seeOther(afterSignIn(config, query.redirectTo));
        return seeOther(`${base}/sign-in${query.redirectTo ? `?${new URLSearchParams({ redirectTo: query.redirectTo })}` : ""}`);
      },
      { query, ...hidden },
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
          const shown = shownErrors(error);
          // A spent or expired challenge cannot be retried: the first factor starts again.
          if (shown.status === 401) return signInPage({ errors: { form: "The sign-in took too long or had too many tries. Sign in again.", fields: {} } }, 401);
          return again({ fields: { [recoveryCode ? "recoveryCode" : "code"]: (error as AuthError).message } }, shown.status);
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
      formPost({
        required: { email: "Enter your email address" },
        again: (form, errors, status) => page(<EmailCodePage frame={frame} errors={errors} email={form.email} sent={false} redirectTo={form.redirectTo} />, status),
        run: async ({ form, meta }) => {
          const canonical = requireEmail(form.email ?? "");
          await requestCode(ctx, { email: canonical, dashboard: false, meta });
          return page(<EmailCodePage frame={frame} errors={noErrors} email={canonical} sent redirectTo={form.redirectTo} />);
        },
      }),
      { body: formBody, ...hidden },
    )
    .post(
      "/sign-in/code/verify",
      formPost({
        required: { code: "Enter the 6-digit code from the email" },
        again: (form, errors, status) => page(<EmailCodePage frame={frame} errors={errors} email={form.email} sent redirectTo={form.redirectTo} />, status),
        run: async ({ form, cookie, meta }) =>
          afterFirstFactor(cookie, await verifyCode(ctx, { email: requireEmail(form.email ?? ""), code: form.code ?? "", auth: null, meta }), form.redirectTo),
      }),
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
        return formPost({
          // A signed-in invitee only accepts; anyone else makes the invited account, with a password.
          required: invitedHere ? {} : { password: "Choose a password" },
          again: (f, errors, status) =>
            page(<AcceptInvitationPage frame={frame} errors={errors} token={token} invitation={invitation} signedInAs={signedIn?.user.email} values={f} />, status),
          run: async () => {
            const result = await acceptInvitation(ctx, teams, {
              token,
              password: invitedHere ? undefined : form.password,
              firstName: form.firstName?.trim() || null,
              lastName: form.lastName?.trim() || null,
              auth: invitedHere ? signedIn.auth : null,
              meta,
            });
            return signedInTo(cookie, result, undefined);
          },
        })({ cookie, meta, body, request });
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
      formPost({
        required: { email: "Enter your email address", password: "Choose a password" },
        again: (form, errors, status) => page(<SignUpPage frame={frame} errors={errors} values={form} redirectTo={form.redirectTo} />, status),
        run: async ({ form, cookie, meta }) => {
          const email = form.email ?? "";
          const input = {
            email,
            password: form.password ?? "",
            confirmPassword: form.confirmPassword ?? "",
            firstName: form.firstName?.trim() || undefined,
            lastName: form.lastName?.trim() || undefined,
          };
          const result = await register(ctx, input, null, meta);
          if (result.status === 202) {
            const next = new URLSearchParams({ email });
            if (form.redirectTo) next.set("redirectTo", form.redirectTo);
            return seeOther(`${base}/verify-email?${next}`);
          }
          return afterFirstFactor(cookie, result.body, form.redirectTo);
        },
      }),
      { body: formBody, ...hidden },
    )
    .get(
      "/verify-email",
      ({ query }) => page(<VerifyEmailPage frame={frame} errors={noErrors} email={query.email} redirectTo={query.redirectTo} />),
      { query, ...hidden },
    )
    .post(
      "/verify-email",
      formPost({
        required: { email: "Enter your email address", code: "Enter the 6-digit code from the email" },
        again: (form, errors, status) => page(<VerifyEmailPage frame={frame} errors={errors} email={form.email} redirectTo={form.redirectTo} />, status),
        run: async ({ form, cookie, meta }) => afterFirstFactor(cookie, await verifyEmail(ctx, { email: form.email ?? "", code: form.code ?? "" }, meta), form.redirectTo),
      }),
      { body: formBody, ...hidden },
    )
    .post(
      "/verify-email/resend",
      formPost({
        required: { email: "Enter your email address" },
        again: (form, errors, status) => page(<VerifyEmailPage frame={frame} errors={errors} email={form.email} redirectTo={form.redirectTo} />, status),
        run: async ({ form, meta }) => {
          await resendVerification(ctx, { email: form.email ?? "" }, meta);
          const notice = "If this address still needs confirming, a new code is on its way.";
          return page(<VerifyEmailPage frame={frame} errors={noErrors} email={form.email} redirectTo={form.redirectTo} notice={notice} />);
        },
      }),
      { body: formBody, ...hidden },
    )
    .get("/forgot-password", () => page(<ForgotPasswordPage frame={frame} errors={noErrors} />), hidden)
    .post(
      "/forgot-password",
      formPost({
        required: { email: "Enter your email address" },
        again: (form, errors, status) => page(<ForgotPasswordPage frame={frame} errors={errors} email={form.email} />, status),
        run: async ({ form, meta }) => {
          await forgotPassword(ctx, { email: form.email ?? "" }, meta);
          return page(<ForgotPasswordPage frame={frame} errors={noErrors} email={form.email} sent />);
        },
      }),
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
      formPost({
        required: { newPassword: "Choose a new password" },
        // A weak choice does not spend the link: it shows next to the field, and the form stays; a dead link does not.
        errorsAt: () => ({ WEAK_PASSWORD: "newPassword" }),
        again: (form, errors, status) => page(<ResetPasswordPage frame={frame} errors={errors} token={form.token} valid={!errors.form} />, status),
        run: async ({ form, meta }) => {
          if (form.newPassword !== form.confirmPassword) throw apiErrors.validation([{ path: "confirmPassword", message: "The passwords do not match" }]);
          await resetPassword(ctx, { token: form.token ?? "", newPassword: form.newPassword ?? "" }, meta);
          return seeOther(`${base}/sign-in?notice=password-reset`);
        },
      }),
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
    .get(
      "/account/linked",
      async ({ request, cookie, meta, query }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        if (query.linked && !query.error) return backToAccount("linked");
        return accountPage(signedIn, { form: flowErrorMessage(query.error ?? ""), fields: {} }, 400);
      },
      { query, ...hidden },
    )
    .post(
      ...accountRoute("/account/profile", {
        run: async (signedIn, { form, meta }) => {
          const firstName = (form.firstName ?? "").trim();
          const lastName = (form.lastName ?? "").trim();
          const tooLong = [firstName.length > 100 ? "firstName" : "", lastName.length > 100 ? "lastName" : ""].filter(Boolean);
          if (tooLong.length > 0) throw apiErrors.validation(tooLong.map((path) => ({ path, message: "At most 100 characters" })));
          await ctx.users.update(signedIn.user.id, { firstName: firstName || null, lastName: lastName || null });
          await ctx.audit.record({ type: "profile_updated", userId: signedIn.user.id, meta, data: { fields: ["firstName", "lastName"] } });
          return backToAccount("profile");
        },
      }),
    )
    .post(
      "/account/sessions/:id/revoke",
      accountPost("/account/sessions/:id/revoke", {
        run: async (signedIn, { meta, params }) => {
          const session = await ctx.sessions.findOwned(signedIn.user.id, params.id ?? "");
          if (session && session.id !== signedIn.auth.sessionId) {
            await ctx.sessions.revoke(session.id, "revoked_by_user");
            await ctx.audit.record({ type: "session_revoked", userId: signedIn.user.id, meta, data: { sessionId: session.id } });
          }
          return backToAccount("session-revoked");
        },
      }),
      { params: z.object({ id: z.string().max(64) }), body: formBody, ...hidden },
    )
    .post(
      ...accountRoute("/account/sessions/revoke-others", {
        run: async (signedIn, { meta }) => {
          const count = await ctx.sessions.revokeAll(signedIn.user.id, signedIn.auth.sessionId, "revoked_by_user");
          await ctx.audit.record({ type: "session_revoked", userId: signedIn.user.id, meta, data: { others: count } });
          return backToAccount("sessions-revoked");
        },
      }),
    )
    .post(
      ...accountRoute("/account/password", {
        required: { currentPassword: "Enter your current password", newPassword: "Choose a new password" },
        // A wrong current password is about that field, not the form.
        errorsAt: () => ({ password: "newPassword" }),
        run: async (signedIn, { form, meta }) => {
          const input = { currentPassword: form.currentPassword ?? "", newPassword: form.newPassword ?? "", confirmPassword: form.confirmPassword ?? "" };
          await passwordCheckedAt("currentPassword", "The current password is not right", changePassword(ctx, signedIn.auth, input, meta));
          return backToAccount("password");
        },
      }),
    )
    .post(
      ...accountRoute("/account/email", {
        // As POST /auth/email/change: the current password in the form is proof enough for an account that has one.
        stepUp: "password",
        required: { newEmail: "Enter the new email address" },
        errorsAt: () => ({ password: "emailPassword", INVALID_EMAIL: "newEmail", EMAIL_TAKEN: "newEmail" }),
        run: async (signedIn, { form, meta }) => {
          const change = requestEmailChange(ctx, signedIn.auth, { newEmail: form.newEmail ?? "", password: form.emailPassword || undefined }, meta);
          await passwordCheckedAt("emailPassword", "The password is not right", change);
          return page(<EmailChangePage frame={frame} errors={noErrors} newEmail={requireEmail(form.newEmail ?? "")} />);
        },
      }),
    )
    .post(
      ...accountRoute("/account/email/confirm", {
        required: { code: "Enter the 6-digit code from the email" },
        again: (_signedIn, form, errors, status) => page(<EmailChangePage frame={frame} errors={errors} newEmail={form.newEmail ?? ""} />, status),
        run: async (signedIn, { form, meta }) => {
          await confirmEmailChange(ctx, signedIn.auth, { code: form.code ?? "" }, meta);
          return backToAccount("email");
        },
      }),
    )
    .post(
      ...accountRoute("/account/totp/setup", {
        stepUp: true,
        run: async (signedIn) => totpSetupPage((await setupTotp(ctx, signedIn.user.id)).otpauthUrl, noErrors),
      }),
    )
    .post(
      ...accountRoute("/account/totp/confirm", {
        stepUp: true,
        required: { code: "Enter the 6-digit code the app shows" },
        again: (_signedIn, form, errors, status) => totpSetupPage(form.otpauthUrl ?? "", errors, status),
        run: async (signedIn, { form, meta }) => {
          const { recoveryCodes } = await confirmTotp(ctx, signedIn.user.id, form.code ?? "", meta);
          return page(<RecoveryCodesPage frame={frame} codes={recoveryCodes} title="Two-step verification is on" />);
        },
      }),
    )
    .post(
      ...accountRoute("/account/totp/disable", {
        required: { disableCode: "Enter a code from your app, or a recovery code" },
        errorsAt: () => ({ code: "disableCode", INVALID_CODE: "disableCode" }),
        run: async (signedIn, { form, meta }) => {
          await disableMfa(ctx, signedIn.user.id, form.disableCode ?? "", meta);
          return backToAccount("mfa-off");
        },
      }),
    )
    .post(
      ...accountRoute("/account/recovery-codes", {
        stepUp: true,
        required: { recoveryCodesCode: "Enter a code from your app" },
        errorsAt: () => ({ code: "recoveryCodesCode", INVALID_CODE: "recoveryCodesCode" }),
        run: async (signedIn, { form, meta }) => {
          const { recoveryCodes } = await regenerateRecoveryCodes(ctx, signedIn.user.id, form.recoveryCodesCode ?? "", meta);
          return page(<RecoveryCodesPage frame={frame} codes={recoveryCodes} title="New recovery codes" />);
        },
      }),
    )
    .post(
      ...accountRoute("/account/passkeys/add", { stepUp: true, run: async (signedIn) => passkeyAddPage(signedIn, noErrors) }),
    )
    .post(
      ...accountRoute("/account/passkeys/register", {
        stepUp: true,
        errorsAt: () => ({ INVALID_PASSKEY_REGISTRATION: "passkey", INVALID_REGISTRATION_CHALLENGE: "passkey", PASSKEY_EXISTS: "passkey" }),
        // Its challenge is spent either way: the page comes back with a new one.
        again: (signedIn, _form, errors, status) => passkeyAddPage(signedIn, errors, status),
        run: async (signedIn, { form, meta }) => {
          const response = postedCredential(registrationResponseSchema, form.response);
          await registerPasskey(ctx, { userId: signedIn.user.id, response, name: form.name?.trim().slice(0, 64) || undefined, meta });
          return backToAccount("passkey-added");
        },
      }),
    )
    .post(
      ...accountRoute("/account/passkeys/rename", {
        errorsAt: (form) => ({ name: `name-${form.id}` }),
        run: async (signedIn, { form }) => {
          await renamePasskey(ctx, signedIn.user.id, form.id ?? "", form.name ?? "");
          return backToAccount("passkey-renamed");
        },
      }),
    )
    .post(
      ...accountRoute("/account/passkeys/remove", {
        stepUp: true,
        run: async (signedIn, { form, meta }) => {
          await deletePasskey(ctx, signedIn.user.id, form.id ?? "", meta);
          return backToAccount("passkey-removed");
        },
      }),
    )
    .post(
      ...accountRoute("/account/link", {
        stepUp: true,
        run: async (signedIn, { form, cookie }) => {
          const flow = await startFlow(ctx, providers, { providerId: form.provider ?? "", redirectTo: undefined, auth: signedIn.auth, link: true, ownPage: `${base}/account/linked` });
          // A link, not a redirect: the CSP's form-action would stop a form post that redirects to the provider.
          const provider = frame.providers.find((p) => p.id === form.provider)?.label ?? "the provider";
          // Through the jar, as a Response's own Set-Cookie would drop the jar's (a step-up's renewed session cookies).
          setCookieLine(cookie, flow.cookie);
          return page(<ContinuePage frame={frame} title={`Link ${provider}`} href={flow.url} label={`Continue to ${provider}`} />);
        },
      }),
    )
    .post(
      ...accountRoute("/account/unlink", {
        stepUp: true,
        run: async (signedIn, { form, meta }) => {
          await unlinkAccount(ctx, signedIn.user.id, form.provider ?? "", meta);
          return backToAccount("unlinked");
        },
      }),
    )
    .post(
      ...accountRoute("/account/delete", {
        // As DELETE /auth/me, but an account with a password proves it with the password in the form.
        stepUp: "password",
        errorsAt: () => ({ INVALID_CREDENTIALS: "deletePassword" }),
        run: async (signedIn, { form, cookie, meta }) => {
          if (signedIn.user.passwordHash !== null && !(await ctx.passwords.verify(form.deletePassword ?? "", signedIn.user.passwordHash))) {
            throw apiErrors.validation([{ path: "deletePassword", message: "The password is not right" }]);
          }
          await ctx.sessions.deleteUser(signedIn.user.id);
          await ctx.audit.record({ type: "account_deleted", userId: signedIn.user.id, meta });
          clearSessionCookies(cookie, config);
          return seeOther(`${base}/sign-in?notice=account-deleted`);
        },
      }),
    )
    .post(
      "/reauth",
      async ({ cookie, meta, body, request }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const form = firstValues(body);
        const action = form.continue ?? "";
        const spec = stepUpForms.get(action);
        if (!spec) return seeOther(`${base}/account`);
        const carried: Form = Object.fromEntries(Object.entries(form).flatMap(([k, v]) => (k.startsWith("carry.") ? [[k.slice(6), v]] : [])));
        const again = (errors: FormErrors, status: number) => reauthPage(signedIn, action, carried, errors, status, form.emailCode !== undefined);
        const proof: ReauthProof = {};
        const code = form.totpCode?.trim();
        if (form.password) proof.password = form.password;
        if (code) proof[looksLikeRecoveryCode(code) ? "recoveryCode" : "totpCode"] = code;
        if (form.emailCode?.trim()) proof.emailCode = form.emailCode.trim();
        if (form.response) {
          proof.challengeId = form.challengeId ?? "";
          proof.passkeyResponse = postedCredential(authenticationResponseSchema, form.response);
        }
        const given = form.password !== undefined ? "password" : form.totpCode !== undefined ? "totpCode" : form.emailCode !== undefined ? "emailCode" : "passkey";
        if (Object.keys(proof).length === 0) return again({ fields: { [given]: given === "password" ? "Enter your password" : "Enter the code" } }, 400);
        let renewed: TokenResponse;
        try {
          renewed = await reauthenticate(ctx, signedIn.auth, proof, meta);
        } catch (error) {
          const shown = shownErrors(error);
          const message = shown.errors.form ?? Object.values(shown.errors.fields)[0] ?? (error as AuthError).message;
          return again({ fields: { [given]: given === "password" && shown.status === 401 ? "The password is not right" : message } }, shown.status);
        }
        setSessionCookies(cookie, config, renewed);
        const auth = await ctx.sessions.authenticate(`Bearer ${renewed.accessToken}`);
        return runAccountForm(action, spec, { auth, user: signedIn.user }, { form: carried, cookie, meta, request, params: {} });
      },
      { body: formBody, ...hidden },
    )
    .post(
      "/reauth/code",
      async ({ cookie, meta, body, request }) => {
        const signedIn = await pageSession(ctx, request, cookie, meta);
        if (!signedIn) return seeOther(`${base}/sign-in`);
        const form = firstValues(body);
        const carried: Form = Object.fromEntries(Object.entries(form).flatMap(([k, v]) => (k.startsWith("carry.") ? [[k.slice(6), v]] : [])));
        try {
          await sendReauthCode(ctx, signedIn.auth, meta);
          return reauthPage(signedIn, form.continue ?? "", carried, noErrors, 200, true);
        } catch (error) {
          const shown = shownErrors(error);
          return reauthPage(signedIn, form.continue ?? "", carried, shown.errors, shown.status);
        }
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
  email: "Your email address was changed.",
  "mfa-off": "Two-step verification is off.",
  "passkey-added": "The passkey was added.",
  "passkey-renamed": "The passkey was renamed.",
  "passkey-removed": "The passkey was removed.",
  linked: "The provider was linked to your account.",
  unlinked: "The provider was unlinked.",
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
