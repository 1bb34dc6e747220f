import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Browser, type CDPSession, chromium, type Page } from "playwright-core";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { serveWebAuthnPage, type WebAuthnPage } from "./support/webauthn-page";

/**
 * A real authenticator: Chromium's virtual CTAP2 authenticator (DevTools protocol) creates and signs with real
 * keys, driven by @simplewebauthn/browser on a page served from the same origin as the auth server.
 */

type Json = Record<string, unknown>;
type Answer = { status: number; body: Json };

let server: TestServer;
let site: WebAuthnPage;
let browser: Browser;
let page: Page;
let cdp: CDPSession;
let authenticatorId: string;

beforeAll(async () => {
  const served = serveWebAuthnPage();
  site = served;
  server = await createTestServer({ WEBAUTHN_ORIGIN: site.origin, WEBAUTHN_RP_ID: "localhost", WEBAUTHN_RP_NAME: "Acme" });
  served.setHandler((request) => server.app.handle(request));
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await browser.newPage();
  await page.goto(site.origin);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const added = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  authenticatorId = added.authenticatorId;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  await server?.close();
});

/** Registers a passkey from the page: options from the server, navigator.credentials.create(), verify. */
function registerInBrowser(accessToken: string, name?: string): Promise<Answer & { options: Json }> {
  return page.evaluate(
    async ({ accessToken, name }) => {
      const auth = { authorization: `Bearer ${accessToken}` };
      const optionsJSON = await (await fetch("/auth/passkeys/register/options", { method: "POST", headers: auth })).json();
      const { startRegistration } = (window as unknown as { webauthn: { startRegistration: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
      const response = await startRegistration({ optionsJSON });
      const res = await fetch("/auth/passkeys/register/verify", {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(name ? { response, name } : { response }),
      });
      return { status: res.status, body: await res.json(), options: optionsJSON };
    },
    { accessToken, name },
  );
}

/** Signs in from the page and returns the assertion too, so the test can try to replay it. */
function signInInBrowser(email?: string, clientUserVerification?: string): Promise<Answer & { challengeId: string; response: Json; options: Json }> {
  return page.evaluate(async ({ email, clientUserVerification }) => {
    const optionsRes = await fetch("/auth/passkeys/login/options", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(email ? { email } : {}),
    });
    const { challengeId, options } = await optionsRes.json();
    const { startAuthentication } = (window as unknown as { webauthn: { startAuthentication: (o: { optionsJSON: unknown }) => Promise<Record<string, unknown>> } })
      .webauthn;
    // A client may ignore what the server asked for; the server must still check the UV flag itself.
    const response = await startAuthentication({ optionsJSON: clientUserVerification ? { ...options, userVerification: clientUserVerification } : options });
    const res = await fetch("/auth/passkeys/login/verify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ challengeId, response }),
    });
    return { status: res.status, body: await res.json(), challengeId, response, options };
  }, { email, clientUserVerification });
}

async function newUser() {
  const email = uniqueEmail("passkey");
  const user = await server.ctx.users.create({ email, emailVerified: true, firstName: "Ada" });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  return { user, email, token: tokens.accessToken };
}

function amrOf(accessToken: string): string[] {
  return JSON.parse(Buffer.from(accessToken.split(".")[1] ?? "", "base64url").toString("utf8")).amr;
}

describe("passkeys with Chromium's virtual authenticator", () => {
  test("register, sign in (a full sign-in, even with MFA on), list, replay refused, delete", async () => {
    const owner = await newUser();

    const registered = await registerInBrowser(owner.token, "Laptop");
    expect(registered.status).toBe(201);
    expect(registered.body).toMatchObject({ name: "Laptop" });
    expect(registered.body.id).toBeString();
    expect(registered.body.createdAt).toBeString();
    const options = registered.options as { rp: Json; authenticatorSelection: Json; excludeCredentials: unknown[]; user: Json };
    expect(options.rp).toEqual({ name: "Acme", id: "localhost" });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "preferred", userVerification: "preferred" });
    expect(options.excludeCredentials).toEqual([]);
    expect(options.user.name).toBe(owner.email);
    expect(server.mailer.last(owner.email)?.text).toContain("passkey");

    // With a passkey, the next options exclude it, so the same authenticator is not registered twice.
    const next = await server.request("POST", "/auth/passkeys/register/options", { token: owner.token });
    expect(next.status).toBe(200);
    expect(next.body.excludeCredentials).toHaveLength(1);

    const credentials = (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
    expect(credentials.length).toBeGreaterThanOrEqual(1);

    // MFA on: a password sign-in is challenged (the mfaToken takes a TOTP or recovery code, as API.md lists), but a
    // verified passkey is a full sign-in of its own.
    await server.ctx.users.update(owner.user.id, { mfaEnabled: true });
    const challenge = await server.ctx.signIn((await server.ctx.users.findById(owner.user.id))!, {
      amr: ["pwd"],
      meta: { ip: null, userAgent: null },
      method: "test",
    });
    expect(challenge).toMatchObject({ mfaRequired: true });
    expect((challenge as { methods: string[] }).methods).toEqual(["totp", "recovery_code"]);

    const signedIn = await signInInBrowser(owner.email);
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.tokenType).toBe("Bearer");
    expect((signedIn.body.user as Json).id).toBe(owner.user.id);
    expect(amrOf(signedIn.body.accessToken as string)).toEqual(["passkey"]);
    expect((signedIn.options as { userVerification: string; allowCredentials: unknown[] }).userVerification).toBe("required");
    expect((signedIn.options as { allowCredentials: unknown[] }).allowCredentials).toHaveLength(1);

    // The same assertion again: its challenge is spent.
    const replay = await server.request("POST", "/auth/passkeys/login/verify", { body: { challengeId: signedIn.challengeId, response: signedIn.response } });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe("INVALID_CHALLENGE");
    // The same assertion under a fresh challenge: it signed the old one, so it does not verify.
    const fresh = await server.request("POST", "/auth/passkeys/login/options", { body: {} });
    const replayFresh = await server.request("POST", "/auth/passkeys/login/verify", { body: { challengeId: fresh.body.challengeId, response: signedIn.response } });
    expect(replayFresh.status).toBe(401);
    expect(replayFresh.body.code).toBe("PASSKEY_INVALID");

    // Discoverable: no email, the browser finds the resident key; the counter moves forward each time.
    const discoverable = await signInInBrowser();
    expect(discoverable.status).toBe(200);
    expect((discoverable.body.user as Json).id).toBe(owner.user.id);

    const list = await server.request("GET", "/auth/passkeys", { token: owner.token });
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).toMatchObject({ id: registered.body.id, name: "Laptop", createdAt: registered.body.createdAt });
    expect(list.body[0].lastUsedAt).toBeString();

    const stranger = await newUser();
    const notTheirs = await server.request("DELETE", `/auth/passkeys/${registered.body.id}`, { token: stranger.token });
    expect(notTheirs.status).toBe(404);
    const bogus = await server.request("DELETE", "/auth/passkeys/not-a-uuid", { token: owner.token });
    expect(bogus.status).toBe(404);
    expect((await server.request("GET", "/auth/passkeys", { token: stranger.token })).body).toEqual([]);

    const deleted = await server.request("DELETE", `/auth/passkeys/${registered.body.id}`, { token: owner.token });
    expect(deleted.status).toBe(204);
    expect((await server.request("GET", "/auth/passkeys", { token: owner.token })).body).toEqual([]);

    // The authenticator still holds the key, but the server no longer knows it.
    const afterDelete = await signInInBrowser();
    expect(afterDelete.status).toBe(401);
    expect(afterDelete.body.code).toBe("PASSKEY_INVALID");
  }, 60_000);

  test("a counter that goes backwards is refused", async () => {
    const owner = await newUser();
    const registered = await registerInBrowser(owner.token);
    expect(registered.status).toBe(201);
    expect(registered.body.name).toBe("Passkey");
    const first = await signInInBrowser(owner.email);
    expect(first.status).toBe(200);

    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    const mine = credentials.find((c) => c.userHandle === Buffer.from(owner.user.id).toString("base64"));
    expect(mine).toBeDefined();
    expect(mine!.signCount).toBeGreaterThan(0);
    // A clone of the key with an older counter, as a copied authenticator would have.
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: mine!.credentialId });
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...mine!, signCount: 0 } });
    const cloned = await signInInBrowser(owner.email);
    expect(cloned.status).toBe(401);
    expect(cloned.body.code).toBe("PASSKEY_INVALID");
  }, 60_000);

  test("without user verification the assertion is not a sign-in", async () => {
    const owner = await newUser();
    expect((await registerInBrowser(owner.token)).status).toBe(201);
    await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
    try {
      // Chromium honours the server's "required" and refuses to answer without UV: nothing reaches the server.
      const refused = await signInInBrowser(owner.email).then(
        () => "answered",
        (error: Error) => error.message,
      );
      expect(refused).toContain("NotAllowedError");
      // A client that downgrades the request gets a genuine assertion without the UV flag: the server refuses it.
      const unverified = await signInInBrowser(owner.email, "discouraged");
      expect(unverified.status).toBe(401);
      expect(unverified.body.code).toBe("PASSKEY_INVALID");
      const [lastEvent] = await server.ctx.audit.listForUser(owner.user.id, { limit: 1 });
      expect(lastEvent).toMatchObject({ type: "sign_in_failed", data: { method: "passkey", reason: "no_user_verification" } });
    } finally {
      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: true });
    }
  }, 60_000);

  test("options: an unknown email gets a look-alike credential list; bad input and stale challenges are refused", async () => {
    const unknown = await server.request("POST", "/auth/passkeys/login/options", { body: { email: uniqueEmail("nobody") } });
    expect(unknown.status).toBe(200);
    expect(unknown.body.challengeId).toBeString();
    expect(unknown.body.options.allowCredentials).toHaveLength(1);
    expect(unknown.body.options.rpId).toBe("localhost");

    const noBody = await server.request("POST", "/auth/passkeys/login/options");
    expect(noBody.status).toBe(200);
    expect(noBody.body.options.allowCredentials).toBeUndefined();

    const badEmail = await server.request("POST", "/auth/passkeys/login/options", { body: { email: "a@b@c" } });
    expect(badEmail.status).toBe(400);

    const unknownChallenge = await server.request("POST", "/auth/passkeys/login/verify", {
      body: {
        challengeId: "nope",
        response: { id: "abc", rawId: "abc", type: "public-key", clientExtensionResults: {}, response: { clientDataJSON: "e30", authenticatorData: "AA", signature: "AA" } },
      },
    });
    expect(unknownChallenge.status).toBe(401);
    expect(unknownChallenge.body.code).toBe("INVALID_CHALLENGE");

    const malformed = await server.request("POST", "/auth/passkeys/login/verify", { form: { challengeId: "x", response: "not json" } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe("VALIDATION_ERROR");

    const owner = await newUser();
    const noChallenge = await server.request("POST", "/auth/passkeys/register/verify", {
      token: owner.token,
      body: { response: { id: "abc", rawId: "abc", type: "public-key", clientExtensionResults: {}, response: { clientDataJSON: "e30", attestationObject: "AA" } } },
    });
    expect(noChallenge.status).toBe(400);
    expect(noChallenge.body.code).toBe("INVALID_REGISTRATION_CHALLENGE");

    expect((await server.request("GET", "/auth/passkeys")).status).toBe(401);
    expect((await server.request("POST", "/auth/passkeys/register/options")).status).toBe(401);
  });
});
