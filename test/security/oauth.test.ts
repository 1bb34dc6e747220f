import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type IdpAccount, startTestIdp, type TestIdp } from "../support/oidc-provider";
import { createTestServer, type TestBrowser, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: social sign-in, against the contract. States and exchange codes work once under races, an exchange code
 * is refused everywhere else (and other tokens at the exchange), redirects go to trusted origins only, and a provider
 * cannot take over a local account through an email it did not verify.
 */
const APP_URL = "http://localhost:3000";
const CALLBACK = `${APP_URL}/auth/oauth/oidc/callback`;
let idp: TestIdp;
let server: TestServer;
/** The browser that drives the flows: it keeps the flow cookie between our redirect and the callback. */
let browser: TestBrowser;

beforeAll(async () => {
  idp = await startTestIdp(CALLBACK);
  server = await createTestServer({
    APP_URL,
    TRUSTED_REDIRECT_ORIGINS: APP_URL,
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

const account = (fields: Partial<IdpAccount> = {}) =>
  idp.addAccount({ sub: `sec-${crypto.randomUUID()}`, email: uniqueEmail("idp"), email_verified: true, ...fields });

async function providerAnswer(acc: IdpAccount): Promise<string> {
  const res = await browser.request("GET", "/auth/oauth/oidc");
  expect(res.status).toBe(302);
  return (await idp.authorize(res.headers.get("location") ?? "", acc.sub, CALLBACK)).search;
}
const callback = (search: string) => browser.request("GET", `/auth/oauth/oidc/callback${search}`);
async function exchangeCode(acc: IdpAccount): Promise<string> {
  const res = await callback(await providerAnswer(acc));
  const code = new URL(res.headers.get("location") ?? "").searchParams.get("code");
  expect(code).toBeString();
  return code!;
}
const exchange = (code: string) => server.request("POST", "/auth/oauth/exchange", { body: { code } });

describe("used once under races", () => {
  test("an OAuth state: 10 parallel callbacks with the same provider answer, one succeeds", async () => {
    const search = await providerAnswer(account());
    const results = await Promise.all(Array.from({ length: 10 }, () => callback(search)));
    const ok = results.filter((r) => r.status === 302 && new URL(r.headers.get("location") ?? "").searchParams.has("code"));
    expect(ok.length).toBe(1);
    for (const r of results) expect(r.status).toBeLessThan(500);
  });

  test("an exchange code: 10 parallel exchanges, one gives tokens", async () => {
    const code = await exchangeCode(account());
    const results = await Promise.all(Array.from({ length: 10 }, () => exchange(code)));
    expect(results.filter((r) => r.status === 200).length).toBe(1);
  });
});

describe("a token of one kind is refused at every other kind's endpoint", () => {
  test("an exchange code as access token, refresh token, reset token, invitation token, mfaToken -> refused, and it still works after", async () => {
    const code = await exchangeCode(account());
    expect((await server.request("GET", "/auth/me", { token: code })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: code } })).status).toBe(401);
    expect((await server.request("POST", "/auth/password/reset", { body: { token: code, newPassword: "some-new-phrase-12" } })).status).toBe(400);
    expect((await server.request("POST", "/auth/invitations/accept", { body: { token: code, password: "some-new-phrase-12" } })).status).toBe(400);
    expect((await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: code, code: "123456" } })).status).toBe(401);
    expect((await exchange(code)).status).toBe(200);
  });

  test("access and refresh tokens as an exchange code -> 400 INVALID_CODE", async () => {
    const { tokens } = await createSignedInUser(server);
    for (const code of [tokens.refreshToken, tokens.accessToken]) {
      const res = await exchange(code);
      expect(res.status).toBe(400);
    }
  });
});

describe("redirects", () => {
  for (const redirectTo of [
    "https://evil.example/",
    "//evil.example/",
    "http://localhost:3000.evil.example/",
    "http://localhost:3000@evil.example/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://localhost:3000/",
  ]) {
    test(`redirectTo ${JSON.stringify(redirectTo)} is refused with 400 UNTRUSTED_REDIRECT`, async () => {
      const res = await server.request("GET", `/auth/oauth/oidc?redirectTo=${encodeURIComponent(redirectTo)}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("UNTRUSTED_REDIRECT");
    });
  }
});

describe("no takeover through unverified emails", () => {
  test("a provider identity with the victim's email, unverified at the provider, does not sign in to the victim's account", async () => {
    const { user } = await createSignedInUser(server);
    const res = await callback(await providerAnswer(account({ email: user.email!, email_verified: false })));
    const back = new URL(res.headers.get("location") ?? "");
    expect(back.searchParams.get("code")).toBeNull();
    expect(back.searchParams.get("error")).toBe("ACCOUNT_EXISTS");
  });
});
