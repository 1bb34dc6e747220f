import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { newAdmin } from "../support/admin";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { serveWebAuthnPage, type WebAuthnPage } from "../support/webauthn-page";

type Answer = { status: number; body: Record<string, unknown> };

let server: TestServer;
let site: WebAuthnPage;
let browser: Browser;
let page: Page;

/** A real authenticator (Chromium's virtual CTAP2 one), as in test/passkeys.test.ts. */
beforeAll(async () => {
  const served = serveWebAuthnPage();
  site = served;
  server = await createTestServer({ WEBAUTHN_ORIGIN: site.origin, WEBAUTHN_RP_ID: "localhost", WEBAUTHN_RP_NAME: "Acme" });
  served.setHandler((request) => server.app.handle(request));
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  page = await browser.newPage();
  await page.goto(site.origin);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  await server?.close();
});

function registerInBrowser(accessToken: string): Promise<Answer> {
  return page.evaluate(async (accessToken) => {
    const auth = { authorization: `Bearer ${accessToken}` };
    const optionsJSON = await (await fetch("/auth/passkeys/register/options", { method: "POST", headers: auth })).json();
    const { startRegistration } = (window as unknown as { webauthn: { startRegistration: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
    const response = await startRegistration({ optionsJSON });
    const res = await fetch("/auth/passkeys/register/verify", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ response }) });
    return { status: res.status, body: await res.json() };
  }, accessToken);
}

function signInInBrowser(email: string): Promise<Answer> {
  return page.evaluate(async (email) => {
    const optionsRes = await fetch("/auth/passkeys/login/options", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email }) });
    const { challengeId, options } = await optionsRes.json();
    const { startAuthentication } = (window as unknown as { webauthn: { startAuthentication: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
    const response = await startAuthentication({ optionsJSON: options });
    const res = await fetch("/auth/passkeys/login/verify", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ challengeId, response }) });
    return { status: res.status, body: await res.json() };
  }, email);
}

test("a passkey sign-in of a banned account answers 403 USER_BANNED, and works again after the unban", async () => {
  const boss = await newAdmin(server);
  const email = uniqueEmail("passkey-banned");
  const user = await server.ctx.users.create({ email, emailVerified: true });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  expect((await registerInBrowser(tokens.accessToken)).status).toBe(201);
  expect((await signInInBrowser(email)).status).toBe(200);

  expect((await server.request("POST", `/auth/admin/users/${user.id}/ban`, { body: { reason: "x" }, token: boss.token })).status).toBe(200);
  const refused = await signInInBrowser(email);
  expect(refused.status).toBe(403);
  expect(refused.body.code).toBe("USER_BANNED");

  expect((await server.request("POST", `/auth/admin/users/${user.id}/unban`, { token: boss.token })).status).toBe(200);
  expect((await signInInBrowser(email)).status).toBe(200);
}, 60_000);
