import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newId } from "../../src/crypto";
import { startTestIdp, type TestIdp } from "../support/oidc-provider";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: ID-token sign-in (`POST /auth/oauth/:provider/token`) against a real OpenID Connect provider on
 * 127.0.0.1. A token that carries a nonce is refused unless the same nonce is sent (so an ID token obtained for
 * another app's sign-in, or lifted from a log, cannot be replayed here), and a token issued more than a few minutes
 * ago is refused with its own code, `401 ID_TOKEN_TOO_OLD`.
 */
const APP_URL = "http://localhost:3000";
let idp: TestIdp;
let server: TestServer;
/** The server's clock runs this far ahead of the provider's, to make a token old without waiting. */
const clock = { aheadS: 0, now: () => new Date(Date.now() + clock.aheadS * 1000) };

beforeAll(async () => {
  idp = await startTestIdp(`${APP_URL}/auth/oauth/oidc/callback`);
  server = await createTestServer(
    { APP_URL, OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret },
    { clock },
  );
}, 60_000);
afterAll(async () => {
  await server.close();
  await idp.close();
});

const claims = (extra: Record<string, unknown> = {}) => ({
  sub: `idt-${newId()}`,
  email: uniqueEmail("idt"),
  email_verified: true,
  iss: idp.issuer,
  aud: idp.clientId,
  ...extra,
});
const signIn = (body: Record<string, unknown>) => server.request("POST", "/auth/oauth/oidc/token", { body });
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("nonce", () => {
  test("a token carrying a nonce signs in only with that same nonce", async () => {
    const idToken = await idp.signIdToken(claims({ nonce: "n-4f2a9c" }));
    for (const nonce of [undefined, "n-4f2a9d", "n-4f2a9", "N-4F2A9C", ""]) {
      const res = await signIn(nonce === undefined ? { idToken } : { idToken, nonce });
      expect([400, 401]).toContain(res.status);
      if (res.status === 401) expect(res.body.code).toBe("INVALID_ID_TOKEN");
    }
    const right = await signIn({ idToken, nonce: "n-4f2a9c" });
    expect(right.status).toBe(200);
    expect(right.body.accessToken).toBeString();
  });

  test("a nonce sent for a token that carries none is refused; a token without nonce and no nonce sent signs in", async () => {
    const idToken = await idp.signIdToken(claims());
    expect((await signIn({ idToken, nonce: "n-unexpected" })).body.code).toBe("INVALID_ID_TOKEN");
    expect((await signIn({ idToken })).status).toBe(200);
  });

  test("form bodies carry the nonce too", async () => {
    const idToken = await idp.signIdToken(claims({ nonce: "n-form" }));
    expect((await server.request("POST", "/auth/oauth/oidc/token", { form: { idToken, nonce: "n-form" } })).status).toBe(200);
  });
});

describe("age of the ID token (iat)", () => {
  test("a token issued more than five minutes ago is 401 ID_TOKEN_TOO_OLD, though it has not expired", async () => {
    const idToken = await idp.signIdToken(claims(), { expiresAt: inAnHour() });
    clock.aheadS = 6 * 60;
    try {
      const res = await signIn({ idToken });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("ID_TOKEN_TOO_OLD");
    } finally {
      clock.aheadS = 0;
    }
  });

  test("a token a few seconds or a couple of minutes old signs in", async () => {
    const idToken = await idp.signIdToken(claims(), { expiresAt: inAnHour() });
    clock.aheadS = 2 * 60;
    try {
      expect((await signIn({ idToken })).status).toBe(200);
    } finally {
      clock.aheadS = 0;
    }
  });

  test("a token issued in the future (beyond clock skew) is refused", async () => {
    const idToken = await idp.signIdToken(claims(), { expiresAt: inAnHour() });
    clock.aheadS = -5 * 60;
    try {
      expect((await signIn({ idToken })).body.code).toBe("INVALID_ID_TOKEN");
    } finally {
      clock.aheadS = 0;
    }
  });
});
