import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { type Browser, chromium, type Page } from "playwright-core";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { movableClock } from "../support/users";
import { openAuthenticatorPage, serveWebAuthnPage, type WebAuthnPage } from "../support/webauthn-page";

/**
 * Checklist: `POST /auth/reauth` with a passkey (Chromium's virtual authenticator signs for real): the user's own
 * passkey assertion, with user verification, renews `auth_time`, also for an account with MFA on; an assertion of
 * someone else's passkey, or one replayed, renews nothing.
 */
type Json = Record<string, unknown>;

const clock = movableClock();
let server: TestServer;
let site: WebAuthnPage;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const served = serveWebAuthnPage();
  site = served;
  server = await createTestServer({ WEBAUTHN_ORIGIN: site.origin, WEBAUTHN_RP_ID: "localhost", WEBAUTHN_RP_NAME: "Acme", ACCESS_TOKEN_TTL_S: 3600 }, { clock });
  served.setHandler((request) => server.app.handle(request));
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  ({ page } = await openAuthenticatorPage(browser, site.origin));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  await server?.close();
});

async function newUser() {
  const email = uniqueEmail("reauth-passkey");
  const user = await server.ctx.users.create({ email, emailVerified: true });
  const tokens = await server.ctx.startSession(user, { amr: ["email"], meta: { ip: null, userAgent: null }, method: "test" });
  return { user, email, token: tokens.accessToken };
}

function registerInBrowser(accessToken: string): Promise<{ status: number }> {
  return page.evaluate(async (accessToken) => {
    const auth = { authorization: `Bearer ${accessToken}` };
    const optionsJSON = await (await fetch("/auth/passkeys/register/options", { method: "POST", headers: auth })).json();
    const { startRegistration } = (window as unknown as { webauthn: { startRegistration: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
    const response = await startRegistration({ optionsJSON });
    const res = await fetch("/auth/passkeys/register/verify", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ response }),
    });
    return { status: res.status };
  }, accessToken);
}

/** An assertion for the account's passkeys (options by email), signed in the browser but not sent anywhere yet. */
function assertionFor(email: string): Promise<{ challengeId: string; response: Json }> {
  return page.evaluate(async (email) => {
    const optionsRes = await fetch("/auth/passkeys/login/options", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email }),
    });
    const { challengeId, options } = await optionsRes.json();
    const { startAuthentication } = (window as unknown as { webauthn: { startAuthentication: (o: { optionsJSON: unknown }) => Promise<Record<string, unknown>> } })
      .webauthn;
    return { challengeId, response: await startAuthentication({ optionsJSON: options }) };
  }, email);
}

describe("POST /auth/reauth with a passkey", () => {
  test("the user's own passkey renews auth_time, with MFA on too; a replay and another user's passkey renew nothing", async () => {
    const owner = await newUser();
    expect((await registerInBrowser(owner.token)).status).toBe(201);
    await server.ctx.users.update(owner.user.id, { mfaEnabled: true });
    clock.advance(301);
    expect((await server.request("POST", "/auth/mfa/totp/setup", { token: owner.token })).body.code).toBe("REAUTH_REQUIRED");

    const proof = await assertionFor(owner.email);
    const renewed = await server.request("POST", "/auth/reauth", {
      token: owner.token,
      body: { challengeId: proof.challengeId, passkeyResponse: proof.response },
    });
    expect(renewed.status).toBe(200);
    expect(decodeJwt(renewed.body.accessToken).auth_time as number).toBeGreaterThanOrEqual(Math.floor(clock.now().getTime() / 1000) - 1);
    expect(decodeJwt(renewed.body.accessToken).sid).toBe(decodeJwt(owner.token).sid);
    expect((await server.request("POST", "/auth/passkeys/register/options", { token: renewed.body.accessToken })).status).toBe(200);

    const replay = await server.request("POST", "/auth/reauth", {
      token: owner.token,
      body: { challengeId: proof.challengeId, passkeyResponse: proof.response },
    });
    expect(replay.status).toBe(401);

    // Someone else's session cannot borrow the owner's passkey to prove itself.
    const other = await newUser();
    clock.advance(301);
    const borrowed = await assertionFor(owner.email);
    const refused = await server.request("POST", "/auth/reauth", {
      token: other.token,
      body: { challengeId: borrowed.challengeId, passkeyResponse: borrowed.response },
    });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("PASSKEY_INVALID");
    expect((await server.request("POST", "/auth/mfa/totp/setup", { token: other.token })).body.code).toBe("REAUTH_REQUIRED");
  });

  test("a challengeId without its passkeyResponse, or a response that is no assertion, is 400 VALIDATION_ERROR", async () => {
    const owner = await newUser();
    const alone = await server.request("POST", "/auth/reauth", { token: owner.token, body: { challengeId: "x" } });
    expect(alone.status).toBe(400);
    expect(alone.body.code).toBe("VALIDATION_ERROR");
    const junk = await server.request("POST", "/auth/reauth", { token: owner.token, body: { challengeId: "x", passkeyResponse: { id: 1 } } });
    expect(junk.status).toBe(400);
    expect(junk.body.code).toBe("VALIDATION_ERROR");
  });
});
