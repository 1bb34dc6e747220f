import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, signInResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { STEP_UP_NOTE } from "../../src/sessions/step-up";
import { requiredString } from "../../src/validation";
import { definePlugin } from "../../src/plugin";
import { oauthApi } from "./api";
import { OAUTH_ERRORS } from "./errors";
import { createProviders } from "./providers";
import * as tables from "./schema";
import { oauthSettings } from "./settings";
import { finishFlow, listAccounts, redeemExchangeCode, signInWithCredential, startFlow, countLinks, unlinkAccount, unlinkAll } from "./service";

const providerParams = z.object({ provider: z.string().min(1).max(32) });
const redirectToField = z.string().min(1).max(2048);

/** Elysia hands a query value containing commas to zod split into an array; join it back into the value sent. */
const queryValue = (max: number) => z.preprocess((v) => (Array.isArray(v) ? v.join(",") : v), z.string().max(max));

const startQuery = z.object({ redirectTo: queryValue(2048).pipe(redirectToField).optional() });

const callbackQuery = z.object({
  code: queryValue(4096).optional(),
  state: queryValue(512).optional(),
  error: queryValue(256).optional(),
  iss: queryValue(2048).optional(),
});

const exchangeBody = z.object({ code: requiredString(256) });

const tokenBody = z
  .object({
    idToken: requiredString(16384).optional(),
    accessToken: requiredString(4096).optional(),
    mode: z.enum(["signin", "signup", "auto"]).default("auto"),
    nonce: requiredString(512).optional(),
  })
  .refine((b) => b.idToken !== undefined || b.accessToken !== undefined, { message: "idToken or accessToken is required", path: ["idToken"] });

/** A redirect's answer has no body; the target is its Location header. */
const redirectAnswer = z.void().describe("A redirect: the target is in the Location header");
const linkBody = z.object({ redirectTo: redirectToField.optional() });

const linkedAccountSchema = z.object({
  provider: z.string(),
  providerAccountId: z.string(),
  email: z.string().nullable(),
  createdAt: z.string(),
});

const FLOW_ERRORS =
  "On failure the browser goes to `redirectTo?error=<CODE>`: `ACCESS_DENIED` (cancelled at the provider), `OAUTH_PROVIDER_ERROR` " +
  "(code exchange or profile failed), `INVALID_ID_TOKEN` (signature, iss, aud, exp or nonce wrong), `INVALID_STATE`, " +
  "`ACCOUNT_EXISTS` (a local account has this email and the provider or we have not verified it: sign in and link from inside), " +
  "`IDENTITY_IN_USE` / `PROVIDER_ALREADY_LINKED` (link flows), `BROWSER_MISMATCH` (the callback came without the flow cookie: " +
  "the flow was finished in another browser than the one that started it; nobody is signed in, linked or upgraded).";

const FLOW_COOKIE =
  "The answer sets the flow cookie (`auth_oauth_flow`, `__Secure-auth_oauth_flow` unless `PUBLIC_URL` is plain-http localhost): " +
  "HttpOnly, SameSite=Lax, 10 minutes, `Path` the provider's callback. It binds the flow to this browser; the callback needs it back.";

/** Social sign-in (Google, GitHub, Microsoft, Facebook, any OpenID Connect provider) and linked accounts. */
export function oauthPlugin(ctx: AuthContext) {
  const providers = createProviders(ctx.config, () => ctx.clock.now());
  return new Elysia({ name: "plugin.oauth", seed: ctx.id, detail: { tags: ["oauth"] } })
    .use(authGuard(ctx))
    .post(
      "/oauth/exchange",
      async ({ body, meta }) => redeemExchangeCode(ctx, body.code, meta),
      {
        body: exchangeBody,
        response: { 200: signInResponseSchema, 400: errorSchema },
        detail: {
          summary: "Swap the callback's one-time code for a session",
          description:
            "The `code` from `redirectTo?code=` works once, within 60 seconds. Answers `200 TokenResponse` (session `amr` `[\"oauth\"]`) " +
            "or `200 MfaChallenge` when the account has MFA on; `400 INVALID_CODE` when the code is unknown, expired or spent.",
        },
      },
    )
    .get(
      "/oauth/:provider",
      async ({ params, query, auth, redirect, set }) => {
        const flow = await startFlow(ctx, providers, { providerId: params.provider, redirectTo: query.redirectTo, auth, link: false });
        set.headers["set-cookie"] = flow.cookie;
        return redirect(flow.url, 302);
      },
      {
        optionalAuth: true,
        params: providerParams,
        query: startQuery,
        response: { 302: redirectAnswer, 400: errorSchema, 401: errorSchema, 404: errorSchema, 502: errorSchema },
        detail: {
          summary: "Start signing in with a provider",
          description:
            "`302` to the provider (`google`, `github`, `microsoft`, `facebook`, `oidc`) with `state`, PKCE (S256) and, for the OpenID " +
            "Connect ones (google, microsoft, oidc), a `nonce`; the attempt lasts 10 minutes and its state works once. `redirectTo` " +
            "(default `APP_URL`) must be an http(s) URL whose scheme, host and port equal one of `TRUSTED_REDIRECT_ORIGINS`, else " +
            "`400 UNTRUSTED_REDIRECT`. `404 PROVIDER_NOT_FOUND` for an unknown or unconfigured provider. With a guest's Bearer token the " +
            "guest is upgraded in place (same id, keeping its passkeys and TOTP) when the identity is new, once the same browser " +
            `finishes the flow. ${FLOW_COOKIE}`,
        },
      },
    )
    .get(
      "/oauth/:provider/callback",
      async ({ params, query, meta, request, redirect, set }) => {
        const cookieHeader = request.headers.get("cookie");
        const finished = await finishFlow(ctx, providers, { providerId: params.provider, query, cookieHeader, meta });
        set.headers["set-cookie"] = finished.cookie;
        return redirect(finished.location, 302);
      },
      {
        params: providerParams,
        query: callbackQuery,
        response: { 302: redirectAnswer, 400: errorSchema },
        detail: {
          summary: "Where the provider sends the browser back",
          description:
            "`302` to `redirectTo?code=<one-time exchange code, 60 s>` (swap it at `POST /oauth/exchange`; tokens never travel in a URL), " +
            `or, for a link flow, to \`redirectTo?linked=<provider>\`. ${FLOW_ERRORS} ` +
            "An unknown, expired or spent `state` names no `redirectTo`: that browser goes to `APP_URL?error=INVALID_STATE`.",
        },
      },
    )
    .post(
      "/oauth/:provider/token",
      async ({ params, body, auth, meta }) =>
        signInWithCredential(ctx, providers, {
          providerId: params.provider,
          credential: { idToken: body.idToken, accessToken: body.accessToken, nonce: body.nonce },
          mode: body.mode,
          auth,
          meta,
        }),
      {
        optionalAuth: true,
        params: providerParams,
        body: tokenBody,
        response: { 200: signInResponseSchema, 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema, 429: errorSchema, 502: errorSchema },
        detail: {
          summary: "Sign in with a token from the provider's own SDK",
          description:
            "google, microsoft, oidc: `idToken`, verified against the provider's JWKS (signature, iss, aud = our client id, exp, and " +
            "`nonce` when sent). github, facebook: `accessToken`, checked with the provider that it was issued to our app, then the profile " +
            "read (github `/user` + `/user/emails`; facebook `debug_token` + `/me`). `mode`: `signin` answers `404 SIGNUP_REQUIRED` when no " +
            "account would be found; `signup` answers `409 ACCOUNT_EXISTS` when one exists; `auto` (default) does either. " +
            "`401 INVALID_ID_TOKEN` / `INVALID_ACCESS_TOKEN`; `409 ACCOUNT_EXISTS` also for an email match that cannot be linked. " +
            "Answers `200 TokenResponse` or `200 MfaChallenge`. A guest's Bearer token upgrades the guest in place. Rate-limited per IP.",
        },
      },
    )
    .post(
      "/accounts/link/:provider",
      async ({ params, body, auth, set }) => {
        const flow = await startFlow(ctx, providers, { providerId: params.provider, redirectTo: body.redirectTo, auth, link: true });
        set.headers["set-cookie"] = flow.cookie;
        return { url: flow.url };
      },
      {
        stepUp: true,
        params: providerParams,
        body: linkBody,
        response: { 200: z.object({ url: z.string() }), 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
        detail: {
          summary: "Start linking a provider to the signed-in account",
          description:
            "`200 {url}`: send the browser there. The flow is the sign-in one and ends at `redirectTo?linked=<provider>`; " +
            "`redirectTo?error=IDENTITY_IN_USE` when the identity belongs to another account, `PROVIDER_ALREADY_LINKED` when another " +
            "identity of this provider is linked already. Same `redirectTo` rules as `GET /oauth/:provider`. " +
            `${FLOW_COOKIE} Call this route from the browser that will open \`url\` (from a page: \`fetch\` with \`credentials: "include"\`). ` +
            STEP_UP_NOTE,
        },
      },
    )
    .get("/accounts", async ({ auth }) => listAccounts(ctx, auth.userId), {
      auth: true,
      response: { 200: z.array(linkedAccountSchema), 401: errorSchema },
      detail: { summary: "The providers linked to the signed-in account", description: "Oldest first." },
    })
    .delete(
      "/accounts/:provider",
      async ({ params, auth, meta, set }) => {
        await unlinkAccount(ctx, auth.userId, params.provider, meta);
        set.status = 204;
      },
      {
        stepUp: true,
        params: providerParams,
        response: { 204: z.void(), 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema },
        detail: {
          summary: "Unlink a provider",
          description:
            "`204`; `404 NOT_FOUND` when it is not linked; `409 LAST_SIGN_IN_METHOD` when the account has no password, no passkey " +
            `and no other linked provider. ${STEP_UP_NOTE}`,
        },
      },
    );
}

export default definePlugin({
  id: "oauth",
  settings: oauthSettings,
  tables,
  errors: OAUTH_ERRORS,
  hooks: () => ({ credentials: [{ countSignInMethods: countLinks, removeUnproven: unlinkAll }] }),
  api: oauthApi,
  routes: oauthPlugin,
});
