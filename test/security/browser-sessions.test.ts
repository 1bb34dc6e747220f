import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CookieJar, setCookies } from "../support/cookies";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: attacks on browser sessions (issue 20). The server is deployed as a browser would meet it in
 * production: https://auth.example.com, its app on https://app.example.com, and a sibling subdomain
 * (https://evil.example.com) run by someone else: same site, another origin.
 */
const PASSWORD = "correct horse battery staple";
const AUTH = "https://auth.example.com";
const APP = "https://app.example.com";
const SIBLING = "https://evil.example.com";
const COOKIE_MODE = { "x-auth-cookies": "1" };

let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ PUBLIC_URL: AUTH, APP_URL: APP });
});
afterAll(() => server.close());

async function victimSignedIn() {
  const jar = new CookieJar();
  const res = await server.request("POST", "/auth/register", {
    body: { email: uniqueEmail("victim"), password: PASSWORD },
    headers: { ...COOKIE_MODE, origin: APP },
  });
  expect(res.status).toBe(201);
  jar.store(res.headers);
  return { jar, userId: res.body.user.id as string };
}

const withCookies = (jar: CookieJar, headers: Record<string, string | undefined> = {}) => ({ cookie: jar.header(), ...headers });

describe("CSRF", () => {
  test("a forged form post from a sibling subdomain (cookies attached, same site) changes nothing: 403 CSRF_REJECTED", async () => {
    const { jar } = await victimSignedIn();
    for (const [method, path, form] of [
      ["PATCH", "/auth/me", { firstName: "Mallory" }],
      ["POST", "/auth/logout", {}],
      ["DELETE", "/auth/sessions", {}],
      ["POST", "/auth/refresh", {}],
      ["POST", "/auth/teams", { name: "Mallory's" }],
    ] as const) {
      const res = await server.request(method, path, { form, headers: withCookies(jar, { origin: SIBLING, "sec-fetch-site": "same-site" }) });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("CSRF_REJECTED");
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    const me = await server.request("GET", "/auth/me", { headers: withCookies(jar) });
    expect(me.status).toBe(200);
    expect(me.body.firstName).toBeNull();
    expect((await server.request("GET", "/auth/teams", { headers: withCookies(jar) })).body).toEqual([]);
  });

  test("a sandboxed frame or a redirect chain (Origin: null) and a spoofed Sec-Fetch-Site next to a foreign Origin are refused", async () => {
    const { jar } = await victimSignedIn();
    for (const headers of [{ origin: "null" }, { origin: SIBLING, "sec-fetch-site": "same-origin" }, { origin: `${AUTH}.evil.com` }, { origin: "https://auth.example.com:8443" }]) {
      const res = await server.request("PATCH", "/auth/me", { body: { firstName: "Mallory" }, headers: withCookies(jar, headers) });
      expect(res.status).toBe(403);
    }
  });
});

describe("login CSRF: signing the victim's browser into the attacker's account", () => {
  test("a plain form cannot ask for cookies: the attacker's tokens land in the answer's body, no cookie is set", async () => {
    const attacker = await createSignedInUser(server, { passwordHash: await server.ctx.passwords.hash(PASSWORD) });
    const res = await server.request("POST", "/auth/login", {
      form: { email: attacker.user.email ?? "", password: PASSWORD },
      headers: { origin: SIBLING, "sec-fetch-site": "same-site" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  test("a script on the sibling asking for cookies is refused on every sign-in route, and no session starts", async () => {
    const attacker = await createSignedInUser(server, { passwordHash: await server.ctx.passwords.hash(PASSWORD) });
    const before = (await server.request("GET", "/auth/sessions", { token: attacker.tokens.accessToken })).body.length;
    for (const [path, body] of [
      ["/auth/login", { email: attacker.user.email, password: PASSWORD }],
      ["/auth/register", { email: uniqueEmail(), password: PASSWORD }],
      ["/auth/anonymous", {}],
      ["/auth/refresh", { refreshToken: attacker.tokens.refreshToken }],
      ["/auth/code/verify", { email: attacker.user.email, code: "000000" }],
    ] as const) {
      const res = await server.request("POST", path, { body, headers: { ...COOKIE_MODE, origin: SIBLING } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("CSRF_REJECTED");
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    // The refresh token was not spent either.
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: attacker.tokens.refreshToken } })).status).toBe(200);
    expect((await server.request("GET", "/auth/sessions", { token: attacker.tokens.accessToken })).body.length).toBe(before);
  });
});

describe("cookie tossing: a sibling subdomain plants cookies for the parent domain", () => {
  test("only __Host- names are ever set outside localhost: the browser refuses such a cookie with a Domain, so a sibling cannot plant one", async () => {
    const { jar } = await victimSignedIn();
    expect([...jar.cookies.keys()].sort()).toEqual(["__Host-auth_at", "__Host-auth_rt"]);
    const res = await server.request("POST", "/auth/refresh", { headers: withCookies(jar, { origin: APP }) });
    for (const cookie of setCookies(res.headers).values()) {
      expect(cookie.name.startsWith("__Host-")).toBe(true);
      expect(cookie.attributes).toHaveProperty("secure");
      expect(cookie.attributes).not.toHaveProperty("domain");
      expect(cookie.attributes.path).toBe("/");
    }
  });

  test("a cookie without __Host- is never read: the attacker's planted access cookie signs nobody in", async () => {
    const attacker = await createSignedInUser(server);
    const planted = { cookie: `auth_at=${attacker.tokens.accessToken}` };
    expect((await server.request("GET", "/auth/me", { headers: planted })).status).toBe(401);
    // Next to the victim's own cookie it changes nothing either: the victim stays the victim.
    const { jar, userId } = await victimSignedIn();
    const both = await server.request("GET", "/auth/me", { headers: { cookie: `auth_at=${attacker.tokens.accessToken}; ${jar.header()}` } });
    expect(both.body.id).toBe(userId);
  });

  test("a planted refresh cookie without __Host- is not read: no body, no __Host-auth_rt is a 400, and nothing is set", async () => {
    const attacker = await createSignedInUser(server);
    const res = await server.request("POST", "/auth/refresh", { headers: { cookie: `auth_rt=${attacker.tokens.refreshToken}`, origin: APP } });
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie()).toEqual([]);
  });
});
