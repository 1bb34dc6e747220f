import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Secret, TOTP } from "otpauth";
import { type Browser, chromium, type Page } from "playwright-core";
import { passkeys } from "../../plugins/mfa/schema";
import { newId } from "../../src/crypto";
import { type IdpAccount, startTestIdp, type TestIdp } from "../support/oidc-provider";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";
import { serveWebAuthnPage, type WebAuthnPage } from "../support/webauthn-page";

/**
 * Checklist: every way into an account that is added or removed mails its owner (issue 17, point 8): a linked
 * provider (from inside, or by a verified email match), a passkey, TOTP on and off. A thief with a token or a second
 * browser cannot add a way in unseen. The notices go out even when the IP's mail budget is spent, and their subjects
 * are fixed text (a passkey's name is the registrant's choice).
 */
const APP_URL = "http://localhost:3000";
const CALLBACK = `${APP_URL}/auth/oauth/oidc/callback`;
const PASSWORD = "notice-owner-phrase-64";

let idp: TestIdp;
let server: TestServer;
let site: WebAuthnPage;
let chrome: Browser;
let page: Page;

beforeAll(async () => {
  idp = await startTestIdp(CALLBACK);
  const served = serveWebAuthnPage();
  site = served;
  server = await createTestServer({
    APP_URL,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
    WEBAUTHN_ORIGIN: site.origin,
    WEBAUTHN_RP_ID: "localhost",
    TRUST_PROXY: true,
    RATE_LIMIT_MAIL_IP: "1/3600",
  });
  served.setHandler((request) => server.app.handle(request));
  chrome = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  page = await chrome.newPage();
  await page.goto(site.origin);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
}, 60_000);
afterAll(async () => {
  await chrome?.close();
  await site?.stop();
  await server?.close();
  await idp?.close();
});

const person = (fields: Partial<IdpAccount> = {}): IdpAccount =>
  idp.addAccount({ sub: `notice-${crypto.randomUUID()}`, email: uniqueEmail("idp"), email_verified: true, ...fields });

/** The one mail to `email` with `subject` sent after `after`, waited for (notices leave after the answer). */
async function notice(email: string, subject: string, after: number) {
  const matching = () => server.mailer.outbox.slice(after).filter((m) => m.to === email && m.subject === subject);
  for (let waited = 0; matching().length === 0 && waited < 3000; waited += 10) await Bun.sleep(10);
  await Bun.sleep(20);
  expect(matching()).toHaveLength(1);
  return matching()[0]!;
}

/** A signed-in owner whose client IP has already spent its mail budget: notices must still reach them. */
async function ownerWithSpentMailBudget() {
  const ip = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
  const email = uniqueEmail("owner");
  const registered = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: { "x-forwarded-for": ip } });
  expect(registered.status).toBe(201);
  await server.request("POST", "/auth/password/forgot", { body: { email: uniqueEmail("burn") }, headers: { "x-forwarded-for": ip } });
  const spent = await server.request("POST", "/auth/password/forgot", { body: { email: uniqueEmail("burn") }, headers: { "x-forwarded-for": ip } });
  expect(spent.status).toBe(429);
  return { email, token: registered.body.accessToken as string, userId: registered.body.user.id as string, headers: { "x-forwarded-for": ip } };
}

describe("a way in added or removed mails the owner", () => {
  test("linking a provider from inside, then unlinking it, each mail the owner", async () => {
    const owner = await ownerWithSpentMailBudget();
    const browser = server.browser();
    const account = person();
    const before = server.mailer.outbox.length;
    const started = await browser.request("POST", "/auth/accounts/link/oidc", { token: owner.token, body: {}, headers: owner.headers });
    const back = await idp.authorize(started.body.url, account.sub, CALLBACK);
    const done = await browser.request("GET", `/auth/oauth/oidc/callback${back.search}`, { headers: owner.headers });
    expect(new URL(done.headers.get("location") ?? "").searchParams.get("linked")).toBe("oidc");
    const linked = await notice(owner.email, "A sign-in provider was linked to your account", before);
    expect(linked.text).toContain("can now be used to sign in");

    const afterLink = server.mailer.outbox.length;
    expect((await server.request("DELETE", "/auth/accounts/oidc", { token: owner.token, headers: owner.headers })).status).toBe(204);
    const unlinked = await notice(owner.email, "A sign-in provider was unlinked from your account", afterLink);
    expect(unlinked.text).toContain("can no longer be used to sign in");
  });

  test("a provider linked by a verified email match on its first sign-in mails the owner", async () => {
    const { user } = await createSignedInUser(server);
    const before = server.mailer.outbox.length;
    const browser = server.browser();
    const start = await browser.request("GET", "/auth/oauth/oidc");
    const back = await idp.authorize(start.headers.get("location") ?? "", person({ email: user.email ?? "" }).sub, CALLBACK);
    const done = await browser.request("GET", `/auth/oauth/oidc/callback${back.search}`);
    expect(new URL(done.headers.get("location") ?? "").searchParams.get("code")).toBeString();
    await notice(user.email ?? "", "A sign-in provider was linked to your account", before);
  });

  test("adding a passkey and removing it each mail the owner; its name stays out of the subject and is escaped in the body", async () => {
    const owner = await ownerWithSpentMailBudget();
    const name = '<img src="https://evil.example/x">Laptop';
    const before = server.mailer.outbox.length;
    const status = await page.evaluate(
      async ({ accessToken, name }) => {
        const auth = { authorization: `Bearer ${accessToken}` };
        const optionsJSON = await (await fetch("/auth/passkeys/register/options", { method: "POST", headers: auth })).json();
        const { startRegistration } = (window as unknown as { webauthn: { startRegistration: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
        const response = await startRegistration({ optionsJSON });
        const res = await fetch("/auth/passkeys/register/verify", {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ response, name }),
        });
        return res.status;
      },
      { accessToken: owner.token, name },
    );
    expect(status).toBe(201);
    const added = await notice(owner.email, "A passkey was added to your account", before);
    expect(added.text).toContain("Laptop");
    expect(added.html).not.toContain('<img src="https://evil.example/x">');

    const [key] = (await server.request("GET", "/auth/passkeys", { token: owner.token })).body;
    const afterAdd = server.mailer.outbox.length;
    expect((await server.request("DELETE", `/auth/passkeys/${key.id}`, { token: owner.token, headers: owner.headers })).status).toBe(204);
    const removed = await notice(owner.email, "A passkey was removed from your account", afterAdd);
    expect(removed.text).toContain("Laptop");
  }, 30_000);

  test("a passkey removed without a browser (planted row) still mails the owner by name", async () => {
    const owner = await ownerWithSpentMailBudget();
    const id = newId();
    await server.ctx.db.insert(passkeys).values({ id, userId: owner.userId, credentialId: `planted-${id}`, publicKey: "cGs", name: "Work key" });
    const before = server.mailer.outbox.length;
    expect((await server.request("DELETE", `/auth/passkeys/${id}`, { token: owner.token, headers: owner.headers })).status).toBe(204);
    expect((await notice(owner.email, "A passkey was removed from your account", before)).text).toContain("Work key");
  });

  test("TOTP turned on and off each mail the owner", async () => {
    const owner = await ownerWithSpentMailBudget();
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: owner.token, headers: owner.headers });
    const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
    const before = server.mailer.outbox.length;
    const confirmed = await server.request("POST", "/auth/mfa/totp/confirm", { token: owner.token, body: { code: totp.generate() }, headers: owner.headers });
    expect(confirmed.status).toBe(200);
    expect((await notice(owner.email, "Two-factor authentication was turned on", before)).text).toContain("turned on");

    const afterOn = server.mailer.outbox.length;
    const code = confirmed.body.recoveryCodes[0];
    expect((await server.request("POST", "/auth/mfa/disable", { token: owner.token, body: { code }, headers: owner.headers })).status).toBe(204);
    expect((await notice(owner.email, "Two-factor authentication was turned off", afterOn)).text).toContain("turned off");
  });
});
