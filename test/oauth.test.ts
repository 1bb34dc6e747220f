import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { passkeys } from "../plugins/mfa/schema";
import { newId, sha256 } from "../src/crypto";
import type { UserRow } from "../src/db/schema";
import { type IdpAccount, startTestIdp, type TestIdp } from "./support/oidc-provider";
import { createTestServer, type TestBrowser, type TestServer, uniqueEmail } from "./support/server";

const APP_URL = "http://localhost:3000";
const CALLBACK = `${APP_URL}/auth/oauth/oidc/callback`;
const OTHER_APP = "https://app.example.com:8443";

let idp: TestIdp;
let server: TestServer;
/** The browser that drives the flows: it keeps the flow cookie between our redirect and the callback. */
let browser: TestBrowser;

beforeAll(async () => {
  idp = await startTestIdp(CALLBACK);
  server = await createTestServer({
    APP_URL,
    TRUSTED_REDIRECT_ORIGINS: `${APP_URL},${OTHER_APP}`,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
  });
  browser = server.browser();
}, 60_000);
afterAll(async () => {
  await server.close();
  await idp.close();
});

let accountCounter = 0;
function newAccount(fields: Partial<IdpAccount> = {}): IdpAccount {
  return idp.addAccount({ sub: `person-${++accountCounter}-${crypto.randomUUID().slice(0, 8)}`, email: uniqueEmail("idp"), email_verified: true, given_name: "Ada", family_name: "Lovelace", ...fields });
}

/** Our 302 to the provider, as a URL. */
async function start(opts: { redirectTo?: string; token?: string } = {}): Promise<URL> {
  const query = opts.redirectTo === undefined ? "" : `?redirectTo=${encodeURIComponent(opts.redirectTo)}`;
  const res = await browser.request("GET", `/auth/oauth/oidc${query}`, { token: opts.token });
  expect(res.status).toBe(302);
  return new URL(res.headers.get("location") ?? "");
}

/** Our callback, called with what the provider sent the browser back with; answers where we redirect. */
async function callback(search: string) {
  return browser.request("GET", `/auth/oauth/oidc/callback${search}`);
}

/** The whole browser round trip: our redirect, the provider's login and consent, our callback. */
async function fullFlow(account: IdpAccount, opts: { redirectTo?: string; token?: string } = {}): Promise<URL> {
  const authorization = await start(opts);
  const back = await idp.authorize(authorization.toString(), account.sub, CALLBACK);
  const res = await callback(back.search);
  expect(res.status).toBe(302);
  return new URL(res.headers.get("location") ?? "");
}

/** A callback whose state is unknown names no trusted redirectTo: the browser goes to APP_URL, with no code. */
function expectStateRefused(res: { status: number; headers: Headers }) {
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get("location") ?? "");
  expect(`${location.origin}${location.pathname}`).toBe(`${APP_URL}/`);
  expect(location.searchParams.get("error")).toBe("INVALID_STATE");
  expect(location.searchParams.has("code")).toBe(false);
}

async function exchange(code: string | null) {
  return server.request("POST", "/auth/oauth/exchange", { body: { code } });
}

async function signInViaOidc(account: IdpAccount, token?: string) {
  const back = await fullFlow(account, { token });
  expect(back.searchParams.get("error")).toBeNull();
  const res = await exchange(back.searchParams.get("code"));
  expect(res.status).toBe(200);
  return res.body as { user: { id: string; email: string | null; emailVerified: boolean; isAnonymous: boolean; firstName: string | null }; accessToken: string };
}

async function localUser(fields: Partial<UserRow>) {
  const user = await server.ctx.users.create({ email: uniqueEmail("local"), ...fields });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  return { user, token: tokens.accessToken };
}

/** Rewrites what the server stored for a flow, as an attacker who could would; for checking what the callback verifies. */
async function tamperFlow(state: string, change: Record<string, string>) {
  const key = `oauth:state:${sha256(state)}`;
  const stored = JSON.parse((await server.ctx.kv.get(key)) ?? "null");
  await server.ctx.kv.set(key, JSON.stringify({ ...stored, ...change }), 600);
}

describe("GET /auth/oauth/:provider", () => {
  test("302 to the provider with state, PKCE S256, nonce and our callback URL", async () => {
    const url = await start();
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get("response_type")).toBe("code");
    expect(url.searchParams.get("client_id")).toBe(idp.clientId);
    expect(url.searchParams.get("redirect_uri")).toBe(CALLBACK);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get("state")?.length).toBeGreaterThanOrEqual(43);
    expect(url.searchParams.get("nonce")?.length).toBeGreaterThanOrEqual(43);
    expect(url.searchParams.get("scope")?.split(" ")).toContain("openid");
  });

  test("unknown and unconfigured providers are 404 PROVIDER_NOT_FOUND", async () => {
    for (const provider of ["nope", "google", "github", "microsoft", "facebook"]) {
      const res = await server.request("GET", `/auth/oauth/${provider}`);
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("PROVIDER_NOT_FOUND");
    }
  });

  test("redirectTo outside TRUSTED_REDIRECT_ORIGINS is 400 UNTRUSTED_REDIRECT", async () => {
    const refused = [
      "javascript:alert(1)",
      "//evil.example/x",
      "/relative/path",
      "https://evil.example/",
      "http://localhost:3000@evil.example/",
      "http://user:pass@localhost:3000/",
      "http://localhost:3000\\@evil.example/",
      "http:\\\\evil.example",
      "http://localhost:3001/",
      "https://localhost:3000/",
      "http://localhost:3000.evil.example/",
      "https://app.example.com/",
      "data:text/html,hi",
      " http://localhost:3000/",
      "http://localhost:3000/\nx",
    ];
    for (const redirectTo of refused) {
      const res = await server.request("GET", `/auth/oauth/oidc?redirectTo=${encodeURIComponent(redirectTo)}`);
      expect({ redirectTo, status: res.status, code: res.body.code }).toEqual({ redirectTo, status: 400, code: "UNTRUSTED_REDIRECT" });
    }
  });

  test("a trusted redirectTo keeps its own query; the default is APP_URL", async () => {
    const account = newAccount();
    const back = await fullFlow(account, { redirectTo: `${OTHER_APP}/after?tab=1,2` });
    expect(back.origin).toBe(OTHER_APP);
    expect(back.pathname).toBe("/after");
    expect(back.searchParams.get("tab")).toBe("1,2");
    expect(back.searchParams.get("code")).toBeTruthy();
    const again = await fullFlow(account);
    expect(again.origin).toBe(APP_URL);
  });
});

describe("redirect flow against a real OpenID Connect provider", () => {
  test("sign-up: the exchange code gives tokens for a new verified user with the profile's names", async () => {
    const account = newAccount();
    const back = await fullFlow(account);
    expect(back.searchParams.has("code")).toBe(true);
    expect(back.toString()).not.toContain("eyJ");
    const res = await exchange(back.searchParams.get("code"));
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ email: account.email, emailVerified: true, firstName: "Ada", lastName: "Lovelace", isAnonymous: false });
    expect(res.body.tokenType).toBe("Bearer");
    const me = await server.request("GET", "/auth/me", { token: res.body.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id ?? me.body.user?.id).toBe(res.body.user.id);
  });

  test("the same identity signs in to the same user next time", async () => {
    const account = newAccount();
    const first = await signInViaOidc(account);
    const second = await signInViaOidc(account);
    expect(second.user.id).toBe(first.user.id);
  });

  test("an exchange code works once, also under concurrent use", async () => {
    const back = await fullFlow(newAccount());
    const code = back.searchParams.get("code");
    const results = await Promise.all(Array.from({ length: 5 }, () => exchange(code)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) expect(r.body.code).toBe("INVALID_CODE");
    expect((await exchange(code)).body.code).toBe("INVALID_CODE");
  });

  test("exchange: unknown code 400 INVALID_CODE; missing code 400 VALIDATION_ERROR; form bodies work", async () => {
    expect((await exchange("not-a-code")).body.code).toBe("INVALID_CODE");
    const missing = await server.request("POST", "/auth/oauth/exchange", { body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe("VALIDATION_ERROR");
    const back = await fullFlow(newAccount());
    const form = await server.request("POST", "/auth/oauth/exchange", { form: { code: back.searchParams.get("code") ?? "" } });
    expect(form.status).toBe(200);
  });

  test("a state works once: replaying the provider's answer goes to APP_URL?error=INVALID_STATE, also when raced", async () => {
    const authorization = await start({ redirectTo: `${OTHER_APP}/cb` });
    const back = await idp.authorize(authorization.toString(), newAccount().sub, CALLBACK);
    const [a, b] = await Promise.all([callback(back.search), callback(back.search)]);
    // One of the two gets the exchange code at the flow's redirectTo, the other is refused.
    const won = a.headers.get("location")?.startsWith(`${OTHER_APP}/cb?code=`) ? a : b;
    expect(won.status).toBe(302);
    expect(new URL(won.headers.get("location") ?? "").searchParams.get("code")).toBeTruthy();
    expectStateRefused(won === a ? b : a);
    expectStateRefused(await callback(back.search));
  });

  test("an unknown, tampered or missing state goes to APP_URL?error=INVALID_STATE", async () => {
    const authorization = await start();
    const back = await idp.authorize(authorization.toString(), newAccount().sub, CALLBACK);
    const tampered = new URLSearchParams(back.search);
    tampered.set("state", `${tampered.get("state")}x`);
    for (const search of [`?${tampered}`, `?code=${back.searchParams.get("code")}`, "?state=unknown&code=x", "?error=access_denied"]) {
      expectStateRefused(await callback(search));
    }
  });

  test("the ID token's nonce is checked: a flow whose nonce does not match ends in error=INVALID_ID_TOKEN", async () => {
    const authorization = await start();
    await tamperFlow(authorization.searchParams.get("state") ?? "", { nonce: "another-nonce" });
    const back = await idp.authorize(authorization.toString(), newAccount().sub, CALLBACK);
    const res = await callback(back.search);
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get("location") ?? "").searchParams.get("error")).toBe("INVALID_ID_TOKEN");
  });

  test("the PKCE verifier is sent: a wrong verifier makes the provider refuse the code", async () => {
    const authorization = await start();
    await tamperFlow(authorization.searchParams.get("state") ?? "", { codeVerifier: "x".repeat(43) });
    const back = await idp.authorize(authorization.toString(), newAccount().sub, CALLBACK);
    const location = new URL((await callback(back.search)).headers.get("location") ?? "");
    expect(location.searchParams.get("error")).toBe("OAUTH_PROVIDER_ERROR");
    expect(location.searchParams.has("code")).toBe(false);
  });

  test("an iss parameter naming another issuer is refused (mix-up defence)", async () => {
    const authorization = await start();
    const back = await idp.authorize(authorization.toString(), newAccount().sub, CALLBACK);
    back.searchParams.set("iss", "https://evil.example");
    const location = new URL((await callback(back.search)).headers.get("location") ?? "");
    expect(location.searchParams.get("error")).toBe("OAUTH_PROVIDER_ERROR");
  });

  test("the provider's error comes back as error=ACCESS_DENIED, and spends the state", async () => {
    const authorization = await start({ redirectTo: `${OTHER_APP}/cb` });
    const state = authorization.searchParams.get("state") ?? "";
    const res = await callback(`?error=access_denied&state=${state}`);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`${OTHER_APP}/cb?error=ACCESS_DENIED`);
    expectStateRefused(await callback(`?code=x&state=${state}`));
  });

  test("a state used on another provider's callback ends in error=INVALID_STATE", async () => {
    const authorization = await start();
    const res = await server.request("GET", `/auth/oauth/github/callback?code=x&state=${authorization.searchParams.get("state")}`);
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get("location") ?? "").searchParams.get("error")).toBe("INVALID_STATE");
  });
});

describe("account linking rules", () => {
  test("verified at the provider and here: the identity is linked to the existing account", async () => {
    const { user, token } = await localUser({ emailVerified: true });
    const account = newAccount({ email: user.email ?? "", email_verified: true });
    const signedIn = await signInViaOidc(account);
    expect(signedIn.user.id).toBe(user.id);
    const accounts = await server.request("GET", "/auth/accounts", { token });
    expect(accounts.body).toEqual([{ provider: "oidc", providerAccountId: account.sub, email: user.email, createdAt: expect.any(String) }]);
  });

  test("the local email unverified: error=ACCOUNT_EXISTS, nothing linked", async () => {
    const { user, token } = await localUser({ emailVerified: false });
    const back = await fullFlow(newAccount({ email: user.email ?? "", email_verified: true }));
    expect(back.searchParams.get("error")).toBe("ACCOUNT_EXISTS");
    expect((await server.request("GET", "/auth/accounts", { token })).body).toEqual([]);
  });

  test("the provider's email unverified: error=ACCOUNT_EXISTS", async () => {
    const { user } = await localUser({ emailVerified: true });
    const back = await fullFlow(newAccount({ email: user.email ?? "", email_verified: false }));
    expect(back.searchParams.get("error")).toBe("ACCOUNT_EXISTS");
  });

  test("an unverified provider email makes a new account with emailVerified false", async () => {
    const signedIn = await signInViaOidc(newAccount({ email_verified: false }));
    expect(signedIn.user.emailVerified).toBe(false);
  });
});

describe("guest upgrade", () => {
  test("a flow started with a guest's token upgrades the guest in place", async () => {
    const guest = await server.request("POST", "/auth/anonymous");
    expect(guest.status).toBe(201);
    const account = newAccount();
    const signedIn = await signInViaOidc(account, guest.body.accessToken);
    expect(signedIn.user.id).toBe(guest.body.user.id);
    expect(signedIn.user.isAnonymous).toBe(false);
    expect(signedIn.user.email).toBe(account.email ?? null);
    const accounts = await server.request("GET", "/auth/accounts", { token: signedIn.accessToken });
    expect(accounts.body.map((a: { provider: string }) => a.provider)).toEqual(["oidc"]);
  });

  test("the guest's own tokens end with the upgrade: a guest who sent someone else its started flow gets nothing", async () => {
    // The attacker starts a flow as a guest and has a victim finish it; the victim's browser exchanges the code.
    const attacker = await server.request("POST", "/auth/anonymous");
    const victim = newAccount();
    const signedIn = await signInViaOidc(victim, attacker.body.accessToken);
    expect(signedIn.user.email).toBe(victim.email ?? null);
    expect((await server.request("GET", "/auth/me", { token: attacker.body.accessToken })).status).toBe(401);
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: attacker.body.refreshToken } });
    expect(refreshed.status).toBe(401);
    // The one who exchanged the code holds the account.
    expect((await server.request("GET", "/auth/me", { token: signedIn.accessToken })).body.email).toBe(victim.email ?? null);
  });

  test("a guest whose identity is already linked signs in to that account; the guest stays a guest", async () => {
    const account = newAccount();
    const owner = await signInViaOidc(account);
    const guest = await server.request("POST", "/auth/anonymous");
    const signedIn = await signInViaOidc(account, guest.body.accessToken);
    expect(signedIn.user.id).toBe(owner.user.id);
    expect((await server.ctx.users.findById(guest.body.user.id))?.isAnonymous).toBe(true);
  });
});

describe("linking from inside and unlinking", () => {
  test("POST /auth/accounts/link/:provider starts a flow that links to the signed-in user", async () => {
    const { user, token } = await localUser({ emailVerified: false, passwordHash: "x" });
    const account = newAccount();
    const res = await browser.request("POST", "/auth/accounts/link/oidc", { token, form: { redirectTo: `${OTHER_APP}/settings` } });
    expect(res.status).toBe(200);
    const back = await idp.authorize(res.body.url, account.sub, CALLBACK);
    const done = await callback(back.search);
    expect(done.status).toBe(302);
    expect(done.headers.get("location")).toBe(`${OTHER_APP}/settings?linked=oidc`);
    const accounts = await server.request("GET", "/auth/accounts", { token });
    expect(accounts.body).toEqual([{ provider: "oidc", providerAccountId: account.sub, email: account.email, createdAt: expect.any(String) }]);
    // Signing in with the identity now reaches this user, whatever the emails say.
    expect((await signInViaOidc(account)).user.id).toBe(user.id);
  });

  test("linking an identity that belongs to another user ends in error=IDENTITY_IN_USE", async () => {
    const account = newAccount();
    await signInViaOidc(account);
    const { token } = await localUser({});
    const res = await browser.request("POST", "/auth/accounts/link/oidc", { token, body: {} });
    expect(res.status).toBe(200);
    const back = await idp.authorize(res.body.url, account.sub, CALLBACK);
    const location = new URL((await callback(back.search)).headers.get("location") ?? "");
    expect(location.origin).toBe(APP_URL);
    expect(location.searchParams.get("error")).toBe("IDENTITY_IN_USE");
  });

  test("link: 401 without a token, 404 for an unknown provider, 400 for an untrusted redirect", async () => {
    expect((await server.request("POST", "/auth/accounts/link/oidc", { body: {} })).status).toBe(401);
    const { token } = await localUser({});
    const unknown = await server.request("POST", "/auth/accounts/link/google", { token, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("PROVIDER_NOT_FOUND");
    const untrusted = await server.request("POST", "/auth/accounts/link/oidc", { token, body: { redirectTo: "https://evil.example/" } });
    expect(untrusted.status).toBe(400);
    expect(untrusted.body.code).toBe("UNTRUSTED_REDIRECT");
  });

  test("GET /auth/accounts and DELETE /auth/accounts/:provider need a token", async () => {
    expect((await server.request("GET", "/auth/accounts")).status).toBe(401);
    expect((await server.request("DELETE", "/auth/accounts/oidc")).status).toBe(401);
  });

  test("unlinking the only way in is 409 LAST_SIGN_IN_METHOD; with a passkey it is allowed", async () => {
    const signedIn = await signInViaOidc(newAccount());
    const refused = await server.request("DELETE", "/auth/accounts/oidc", { token: signedIn.accessToken });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("LAST_SIGN_IN_METHOD");
    await server.ctx.db.insert(passkeys).values({ id: newId(), userId: signedIn.user.id, credentialId: newId(), publicKey: "pk" });
    const done = await server.request("DELETE", "/auth/accounts/oidc", { token: signedIn.accessToken });
    expect(done.status).toBe(204);
    expect((await server.request("GET", "/auth/accounts", { token: signedIn.accessToken })).body).toEqual([]);
  });

  test("unlinking with a password set is 204, then 404 when not linked", async () => {
    const signedIn = await signInViaOidc(newAccount());
    await server.ctx.users.update(signedIn.user.id, { passwordHash: await server.ctx.passwords.hash("a long password") });
    expect((await server.request("DELETE", "/auth/accounts/oidc", { token: signedIn.accessToken })).status).toBe(204);
    const again = await server.request("DELETE", "/auth/accounts/oidc", { token: signedIn.accessToken });
    expect(again.status).toBe(404);
  });
});

describe("POST /auth/oauth/oidc/token", () => {
  const claimsFor = (sub: string, email: string) => ({ sub, email, email_verified: true, iss: idp.issuer, aud: idp.clientId });

  test("modes: signin without an account 404 SIGNUP_REQUIRED, signup 200, signup again 409 ACCOUNT_EXISTS, signin 200", async () => {
    const idToken = await idp.signIdToken(claimsFor(`tok-${newId()}`, uniqueEmail("tok")));
    const signin = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken, mode: "signin" } });
    expect(signin.status).toBe(404);
    expect(signin.body.code).toBe("SIGNUP_REQUIRED");
    const signup = await server.request("POST", "/auth/oauth/oidc/token", { form: { idToken, mode: "signup" } });
    expect(signup.status).toBe(200);
    expect(signup.body.user.emailVerified).toBe(true);
    const again = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken, mode: "signup" } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("ACCOUNT_EXISTS");
    const later = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken, mode: "signin" } });
    expect(later.status).toBe(200);
    expect(later.body.user.id).toBe(signup.body.user.id);
    const auto = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken } });
    expect(auto.body.user.id).toBe(signup.body.user.id);
  });

  test("a second identity of the provider with the email of an account linked to a first: 409 ACCOUNT_EXISTS, nothing linked", async () => {
    const email = uniqueEmail("two-ids");
    const first = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: await idp.signIdToken(claimsFor(`one-${newId()}`, email)) } });
    expect(first.status).toBe(200);
    const second = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: await idp.signIdToken(claimsFor(`two-${newId()}`, email)) } });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe("ACCOUNT_EXISTS");
    const accounts = await server.request("GET", "/auth/accounts", { token: first.body.accessToken });
    expect(accounts.body).toHaveLength(1);
  });

  test("ID tokens with a wrong audience, issuer, key, expiry or nonce are 401 INVALID_ID_TOKEN", async () => {
    const base = claimsFor(`bad-${newId()}`, uniqueEmail("bad"));
    const past = Math.floor(Date.now() / 1000) - 3600;
    const bad = [
      await idp.signIdToken({ ...base, aud: "another-client" }),
      await idp.signIdToken({ ...base, iss: "https://evil.example" }),
      await idp.signIdToken(base, { key: "foreign" }),
      await idp.signIdToken(base, { expiresAt: past }),
      "not.a.jwt",
    ];
    for (const idToken of bad) {
      const res = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_ID_TOKEN");
    }
    const withNonce = await idp.signIdToken({ ...base, nonce: "n-1" });
    expect((await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: withNonce, nonce: "n-2" } })).status).toBe(401);
    expect((await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: withNonce, nonce: "n-1" } })).status).toBe(200);
  });

  test("bad bodies: neither token 400, an access token for an OIDC provider 400, a bad mode 400", async () => {
    for (const body of [{}, { accessToken: "x" }, { idToken: "x", mode: "maybe" }]) {
      const res = await server.request("POST", "/auth/oauth/oidc/token", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
    expect((await server.request("POST", "/auth/oauth/nope/token", { body: { idToken: "x" } })).body.code).toBe("PROVIDER_NOT_FOUND");
  });

  test("an email match that may not be linked is 409 ACCOUNT_EXISTS; a guest's token upgrades the guest", async () => {
    const { user } = await localUser({ emailVerified: false });
    const clash = await idp.signIdToken(claimsFor(`clash-${newId()}`, user.email ?? ""));
    const res = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: clash } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("ACCOUNT_EXISTS");

    const guest = await server.request("POST", "/auth/anonymous");
    const fresh = await idp.signIdToken(claimsFor(`guest-${newId()}`, uniqueEmail("guest")));
    const upgraded = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: fresh }, token: guest.body.accessToken });
    expect(upgraded.status).toBe(200);
    expect(upgraded.body.user).toMatchObject({ id: guest.body.user.id, isAnonymous: false });
  });

  test("a user with MFA on gets an MfaChallenge instead of tokens", async () => {
    const idToken = await idp.signIdToken(claimsFor(`mfa-${newId()}`, uniqueEmail("mfa")));
    const signup = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken } });
    await server.ctx.users.update(signup.body.user.id, { mfaEnabled: true });
    const res = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ mfaRequired: true, mfaToken: expect.any(String) });
    expect(res.body.accessToken).toBeUndefined();
  });
});
