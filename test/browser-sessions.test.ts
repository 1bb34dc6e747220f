import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Secret, TOTP } from "otpauth";
import { loadConfig } from "../src/config";
import { sessionCookies } from "../src/sessions/cookies";
import { buildAuthServer } from "../src/server";
import { CookieJar, setCookies } from "./support/cookies";
import { startTestIdp } from "./support/oidc-provider";
import { backend, createTestServer, type TestResponse, type TestServer, testDatabase, testStore, uniqueEmail } from "./support/server";
import { createSignedInUser, movableClock } from "./support/users";

// The preload's default reaches only the first file of a run; these tests boot servers and browsers.
setDefaultTimeout(60_000);

const PASSWORD = "correct horse battery staple";
const PUBLIC_ORIGIN = "http://localhost:3000";
const APP_ORIGIN = "http://localhost:5173";
const EVIL_ORIGIN = "http://evil.example";

const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ CORS_ORIGINS: APP_ORIGIN }, { clock });
});
afterAll(() => server.close());

type Sent = { body?: unknown; form?: Record<string, string>; headers?: Record<string, string | undefined>; token?: string };

/** A browser on one origin: it sends its Origin and cookie jar, and keeps what each answer sets. */
function browserOn(target: TestServer, origin: string | null, jar = new CookieJar()) {
  return {
    jar,
    async request(method: string, path: string, opts: Sent = {}): Promise<TestResponse> {
      const headers: Record<string, string | undefined> = { ...opts.headers };
      if (origin !== null) headers.origin = origin;
      if (jar.cookies.size > 0) headers.cookie = jar.header();
      const res = await target.request(method, path, { ...opts, headers });
      jar.store(res.headers);
      return res;
    },
  };
}

const COOKIE_MODE = { "x-auth-cookies": "1" };

async function signUpInCookies(target: TestServer, origin = PUBLIC_ORIGIN) {
  const browser = browserOn(target, origin);
  const email = uniqueEmail("cookie");
  const res = await browser.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: COOKIE_MODE });
  expect(res.status).toBe(201);
  return { browser, email, res };
}

function expectStrippedTokenResponse(body: Record<string, unknown>) {
  expect(body).not.toHaveProperty("accessToken");
  expect(body).not.toHaveProperty("refreshToken");
  const user = body.user as { id?: unknown; mfaEnabled?: unknown };
  expect([body.tokenType, body.expiresIn, body.mfaEnabled]).toEqual(["Bearer", 900, user.mfaEnabled]);
  expect(typeof user.id).toBe("string");
}

describe("cookie attributes", () => {
  test("with a localhost PUBLIC_URL: auth_at and auth_rt, HttpOnly, SameSite=Lax, Path=/, no Domain, no Secure; the body has no tokens", async () => {
    const { res } = await signUpInCookies(server);
    expectStrippedTokenResponse(res.body);
    const set = setCookies(res.headers);
    expect([...set.keys()].sort()).toEqual(["auth_at", "auth_rt"]);
    for (const cookie of set.values()) {
      expect(cookie.value.length).toBeGreaterThan(40);
      expect(cookie.attributes).toEqual({ "max-age": expect.any(String), path: "/", httponly: "", samesite: "Lax" });
    }
    expect(set.get("auth_at")?.attributes["max-age"]).toBe("900");
    expect(set.get("auth_rt")?.attributes["max-age"]).toBe("2592000");
  });

  test("with an https PUBLIC_URL: __Host-auth_at and __Host-auth_rt, Secure as well", async () => {
    const secure = await createTestServer({ PUBLIC_URL: "https://auth.example.com", APP_URL: "https://app.example.com" });
    try {
      const { res } = await signUpInCookies(secure, "https://app.example.com");
      expectStrippedTokenResponse(res.body);
      const set = setCookies(res.headers);
      expect([...set.keys()].sort()).toEqual(["__Host-auth_at", "__Host-auth_rt"]);
      for (const cookie of set.values()) {
        expect(cookie.attributes).toEqual({ "max-age": expect.any(String), path: "/", httponly: "", secure: "", samesite: "Lax" });
      }
    } finally {
      await secure.close();
    }
  });

  test("only http://localhost, 127.0.0.1 and [::1] (any port) go without Secure and __Host-", () => {
    const names = (PUBLIC_URL: string) => sessionCookies(loadConfig({ PUBLIC_URL })).access;
    expect(names("http://localhost")).toBe("auth_at");
    expect(names("http://localhost:8080/")).toBe("auth_at");
    expect(names("http://127.0.0.1:3000")).toBe("auth_at");
    expect(names("http://[::1]:3000")).toBe("auth_at");
    expect(names("https://localhost:3000")).toBe("__Host-auth_at");
    expect(names("http://localhost.example.com")).toBe("__Host-auth_at");
    expect(names("http://auth.internal:3000")).toBe("__Host-auth_at");
    expect(names("https://auth.example.com")).toBe("__Host-auth_at");
  });

  test("without X-Auth-Cookies nothing changes: tokens in the body, no cookie", async () => {
    const res = await server.request("POST", "/auth/register", { body: { email: uniqueEmail(), password: PASSWORD }, headers: { origin: EVIL_ORIGIN } });
    expect(res.status).toBe(201);
    expect(res.body.accessToken).toEqual(expect.any(String));
    expect(res.headers.getSetCookie()).toEqual([]);
  });
});

describe("every sign-in path answers in cookies", () => {
  async function passwordUser(fields: Record<string, unknown> = {}) {
    const email = uniqueEmail("paths");
    const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD), ...fields });
    return { user, email };
  }

  async function expectCookieAnswer(res: TestResponse, browser: ReturnType<typeof browserOn>) {
    expect(res.status).toBeLessThan(300);
    expectStrippedTokenResponse(res.body);
    expect([...setCookies(res.headers).keys()].sort()).toEqual(["auth_at", "auth_rt"]);
    const me = await browser.request("GET", "/auth/me");
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
  }

  test("login, guest, email code and email verification", async () => {
    const { email } = await passwordUser();
    let browser = browserOn(server, PUBLIC_ORIGIN);
    await expectCookieAnswer(await browser.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: COOKIE_MODE }), browser);

    browser = browserOn(server, PUBLIC_ORIGIN);
    await expectCookieAnswer(await browser.request("POST", "/auth/anonymous", { headers: COOKIE_MODE }), browser);

    browser = browserOn(server, APP_ORIGIN);
    const codeEmail = uniqueEmail("code");
    expect((await browser.request("POST", "/auth/code/request", { body: { email: codeEmail } })).status).toBe(202);
    const code = /\b(\d{6})\b/.exec((await server.mailTo(codeEmail, /\d{6}/)).text)?.[1];
    await expectCookieAnswer(await browser.request("POST", "/auth/code/verify", { body: { email: codeEmail, code }, headers: COOKIE_MODE }), browser);

    const verifying = await createTestServer({ REQUIRE_EMAIL_VERIFICATION: true });
    try {
      const b = browserOn(verifying, PUBLIC_ORIGIN);
      const vEmail = uniqueEmail("verify");
      expect((await b.request("POST", "/auth/register", { body: { email: vEmail, password: PASSWORD }, headers: COOKIE_MODE })).status).toBe(202);
      expect(b.jar.cookies.size).toBe(0);
      const vCode = /\b(\d{6})\b/.exec((await verifying.mailTo(vEmail, /\d{6}/)).text)?.[1];
      await expectCookieAnswer(await b.request("POST", "/auth/email/verify", { body: { email: vEmail, code: vCode }, headers: COOKIE_MODE }), b);
    } finally {
      await verifying.close();
    }
  });

  test("a password sign-in with MFA on: the MfaChallenge sets no cookie; MFA verify and recover answer in cookies", async () => {
    const { user, email } = await passwordUser();
    const signedIn = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: signedIn.accessToken });
    const totp = () => new TOTP({ secret: Secret.fromBase32(setup.body.secret) }).generate({ timestamp: clock.now().getTime() });
    clock.advance(30);
    const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: signedIn.accessToken, body: { code: totp() } });
    expect(confirm.status).toBe(200);

    let browser = browserOn(server, PUBLIC_ORIGIN);
    const challenge = await browser.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: COOKIE_MODE });
    expect(challenge.body.mfaRequired).toBe(true);
    expect(challenge.body.mfaToken).toEqual(expect.any(String));
    expect(challenge.headers.getSetCookie()).toEqual([]);
    clock.advance(30);
    await expectCookieAnswer(
      await browser.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.body.mfaToken, code: totp() }, headers: COOKIE_MODE }),
      browser,
    );

    browser = browserOn(server, PUBLIC_ORIGIN);
    const again = await browser.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: COOKIE_MODE });
    expect(again.headers.getSetCookie()).toEqual([]);
    const recoveryCode = confirm.body.recoveryCodes[0];
    await expectCookieAnswer(
      await browser.request("POST", "/auth/mfa/recover", { body: { mfaToken: again.body.mfaToken, recoveryCode }, headers: COOKIE_MODE }),
      browser,
    );
  });

  test("team switch and invitation accept, authenticated by the cookie", async () => {
    const { browser } = await signUpInCookies(server);
    const team = await browser.request("POST", "/auth/teams", { body: { name: "Cookie Lab" } });
    expect(team.status).toBe(201);
    const switched = await browser.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, headers: COOKIE_MODE });
    await expectCookieAnswer(switched, browser);
    const session = await browser.request("GET", "/auth/session");
    expect(session.body.session.teamId).toBe(team.body.id);

    const invitee = uniqueEmail("invitee");
    expect((await browser.request("POST", "/auth/invitations", { body: { email: invitee, teamId: team.body.id } })).status).toBe(201);
    const token = /token=([A-Za-z0-9_-]+)/.exec((await server.mailTo(invitee, /token=/)).text)?.[1];
    const fresh = browserOn(server, PUBLIC_ORIGIN);
    await expectCookieAnswer(
      await fresh.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD }, headers: COOKIE_MODE }),
      fresh,
    );
  });

  test("a guest in a cookie upgrades in place by registering from its browser", async () => {
    const browser = browserOn(server, PUBLIC_ORIGIN);
    const guest = await browser.request("POST", "/auth/anonymous", { headers: COOKIE_MODE });
    const registered = await browser.request("POST", "/auth/register", { body: { email: uniqueEmail(), password: PASSWORD }, headers: COOKIE_MODE });
    expect(registered.status).toBe(201);
    expect(registered.body.user.id).toBe(guest.body.user.id);
    expect(registered.body.user.isAnonymous).toBe(false);
  });

  test("a stale cookie does not stop a sign-up: it is ignored on routes where authentication is optional", async () => {
    const { browser } = await signUpInCookies(server);
    const stale = new CookieJar();
    for (const [k, v] of browser.jar.cookies) stale.cookies.set(k, v);
    expect((await browser.request("POST", "/auth/logout")).status).toBe(204);
    const again = browserOn(server, PUBLIC_ORIGIN, stale);
    const res = await again.request("POST", "/auth/register", { body: { email: uniqueEmail(), password: PASSWORD }, headers: COOKIE_MODE });
    expect(res.status).toBe(201);
  });
});

describe("the access cookie authenticates", () => {
  test("every route that takes a Bearer token takes the cookie: me, session, sessions, profile change", async () => {
    const { browser, email } = await signUpInCookies(server);
    expect((await browser.request("GET", "/auth/me")).body.email).toBe(email);
    expect((await browser.request("GET", "/auth/session")).body.valid).toBe(true);
    const sessions = await browser.request("GET", "/auth/sessions");
    expect(sessions.body).toHaveLength(1);
    expect(sessions.body[0].current).toBe(true);
    const patched = await browser.request("PATCH", "/auth/me", { body: { firstName: "Ada" } });
    expect(patched.status).toBe(200);
    expect(patched.body.firstName).toBe("Ada");
  });

  test("an Authorization header alone counts: an invalid one is 401 whatever the cookie, a valid one wins over it", async () => {
    const { browser, email } = await signUpInCookies(server);
    const invalid = await browser.request("GET", "/auth/me", { headers: { authorization: "Bearer not-a-token" } });
    expect(invalid.status).toBe(401);
    const empty = await browser.request("GET", "/auth/me", { headers: { authorization: "" } });
    expect(empty.status).toBe(401);
    const other = await createSignedInUser(server);
    const asOther = await browser.request("GET", "/auth/me", { token: other.tokens.accessToken });
    expect(asOther.status).toBe(200);
    expect(asOther.body.email).toBe(other.user.email);
    expect(asOther.body.email).not.toBe(email);
  });

  test("no cookie and no header: 401", async () => {
    expect((await browserOn(server, PUBLIC_ORIGIN).request("GET", "/auth/me")).status).toBe(401);
  });
});

describe("CSRF: a cookie-authenticated request that can change something shows where it comes from", () => {
  const cases: Array<[string, Record<string, string>, number]> = [
    ["Origin of PUBLIC_URL", { origin: PUBLIC_ORIGIN }, 200],
    ["Origin in CORS_ORIGINS", { origin: APP_ORIGIN }, 200],
    ["no Origin, Sec-Fetch-Site: same-origin", { "sec-fetch-site": "same-origin" }, 200],
    ["another Origin", { origin: EVIL_ORIGIN }, 403],
    ["an Origin that only shares the host", { origin: "http://localhost:4000" }, 403],
    ["Origin: null", { origin: "null" }, 403],
    ["Origin: null with Sec-Fetch-Site: same-origin", { origin: "null", "sec-fetch-site": "same-origin" }, 403],
    ["a stranger's Origin with Sec-Fetch-Site: same-origin", { origin: EVIL_ORIGIN, "sec-fetch-site": "same-origin" }, 403],
    ["no Origin, Sec-Fetch-Site: same-site", { "sec-fetch-site": "same-site" }, 403],
    ["no Origin, Sec-Fetch-Site: cross-site", { "sec-fetch-site": "cross-site" }, 403],
    ["no Origin, Sec-Fetch-Site: none", { "sec-fetch-site": "none" }, 403],
    ["neither header", {}, 403],
  ];

  for (const [name, headers, status] of cases) {
    test(`PATCH /auth/me with ${name}: ${status}`, async () => {
      const { browser } = await signUpInCookies(server);
      const forged = browserOn(server, null, browser.jar);
      const res = await forged.request("PATCH", "/auth/me", { body: { firstName: "Mallory" }, headers });
      expect(res.status).toBe(status);
      const me = await browser.request("GET", "/auth/me");
      if (status === 403) {
        expect(res.body).toEqual({ code: "CSRF_REJECTED", message: expect.any(String) });
        expect(me.body.firstName).toBeNull();
      } else {
        expect(me.body.firstName).toBe("Mallory");
      }
    });
  }

  test("refused before the body is read: a forged request with an invalid body is 403, not 400", async () => {
    const { browser } = await signUpInCookies(server);
    const res = await browserOn(server, EVIL_ORIGIN, browser.jar).request("PATCH", "/auth/me", { body: { firstName: 42 } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("CSRF_REJECTED");
  });

  test("GET, HEAD and OPTIONS need no origin", async () => {
    const { browser } = await signUpInCookies(server);
    const stranger = browserOn(server, EVIL_ORIGIN, browser.jar);
    expect((await stranger.request("GET", "/auth/me")).status).toBe(200);
    expect((await stranger.request("HEAD", "/auth/session")).status).toBe(200);
  });

  test("logout, session revocation and account deletion from a stranger's page are refused and change nothing", async () => {
    const { browser } = await signUpInCookies(server);
    const stranger = browserOn(server, EVIL_ORIGIN, browser.jar);
    for (const [method, path] of [
      ["POST", "/auth/logout"],
      ["DELETE", "/auth/sessions"],
      ["DELETE", "/auth/me"],
      ["POST", "/auth/teams"],
    ] as const) {
      const res = await stranger.request(method, path, { form: { name: "x" } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("CSRF_REJECTED");
    }
    expect((await browser.request("GET", "/auth/me")).status).toBe(200);
    expect((await browser.request("GET", "/auth/teams")).body).toEqual([]);
  });

  test("Bearer requests are unaffected: no Origin, or a stranger's, changes nothing about them", async () => {
    const { tokens } = await createSignedInUser(server);
    const none = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body: { firstName: "Bea" } });
    expect(none.status).toBe(200);
    const foreign = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body: { lastName: "Rer" }, headers: { origin: EVIL_ORIGIN } });
    expect(foreign.status).toBe(200);
    const bearerSignIn = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken }, headers: { origin: "null" } });
    expect(bearerSignIn.status).toBe(200);
  });

  test("login CSRF: a sign-in that would set cookies must come from a trusted origin too, and then starts no session", async () => {
    const { user, tokens } = await createSignedInUser(server, { passwordHash: await server.ctx.passwords.hash(PASSWORD) });
    const before = await server.request("GET", "/auth/sessions", { token: tokens.accessToken });
    for (const headers of [{ origin: EVIL_ORIGIN }, { origin: "null" }, { "sec-fetch-site": "same-site" }, { "sec-fetch-site": "cross-site" }] as Record<string, string>[]) {
      const res = await server.request("POST", "/auth/login", { body: { email: user.email, password: PASSWORD }, headers: { ...COOKIE_MODE, ...headers } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("CSRF_REJECTED");
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    for (const path of ["/auth/anonymous", "/auth/register"]) {
      const res = await server.request("POST", path, { body: { email: uniqueEmail(), password: PASSWORD }, headers: { ...COOKIE_MODE, origin: EVIL_ORIGIN } });
      expect(res.status).toBe(403);
    }
    const after = await server.request("GET", "/auth/sessions", { token: tokens.accessToken });
    expect(after.body).toHaveLength(before.body.length);
    const sameOrigin = await server.request("POST", "/auth/login", {
      body: { email: user.email, password: PASSWORD },
      headers: { ...COOKIE_MODE, "sec-fetch-site": "same-origin" },
    });
    expect(sameOrigin.status).toBe(200);
  });

  test("a client that is no browser (neither Origin nor Sec-Fetch-Site) gets its sign-in in cookies on every sign-in route", async () => {
    const { user } = await createSignedInUser(server, { passwordHash: await server.ctx.passwords.hash(PASSWORD) });
    for (const [path, body, status] of [
      ["/auth/login", { email: user.email, password: PASSWORD }, 200],
      ["/auth/register", { email: uniqueEmail("plain-client"), password: PASSWORD }, 201],
      ["/auth/anonymous", {}, 201],
    ] as const) {
      const res = await server.request("POST", path, { body, headers: COOKIE_MODE });
      expect(res.status).toBe(status);
      expect(res.body.accessToken).toBeUndefined();
      const names = res.headers.getSetCookie().map((line) => line.split("=")[0]);
      expect(names.sort()).toEqual(["auth_at", "auth_rt"]);
    }
  });
});

describe("POST /auth/refresh with the refresh cookie", () => {
  test("no body: both cookies rotate on the same chain; the body is the TokenResponse without tokens", async () => {
    const { browser, res } = await signUpInCookies(server);
    const first = new Map(browser.jar.cookies);
    const refreshed = await browser.request("POST", "/auth/refresh");
    expect(refreshed.status).toBe(200);
    expectStrippedTokenResponse(refreshed.body);
    expect(refreshed.body.user.id).toBe(res.body.user.id);
    const set = setCookies(refreshed.headers);
    expect(set.get("auth_rt")?.value).not.toBe(first.get("auth_rt"));
    expect(set.get("auth_at")?.attributes).toEqual({ "max-age": "900", path: "/", httponly: "", samesite: "Lax" });
    const me = await browser.request("GET", "/auth/session");
    expect(me.status).toBe(200);
    const sessions = await browser.request("GET", "/auth/sessions");
    expect(sessions.body).toHaveLength(1);
  });

  test("an empty JSON body counts as no body; neither body nor cookie is 400 naming refreshToken", async () => {
    const { browser } = await signUpInCookies(server);
    expect((await browser.request("POST", "/auth/refresh", { body: {} })).status).toBe(200);
    const none = await browserOn(server, PUBLIC_ORIGIN).request("POST", "/auth/refresh");
    expect(none.status).toBe(400);
    expect(none.body.details[0].path).toBe("refreshToken");
  });

  test("tabs racing one refresh all stay signed in: within the grace each gets the same successor pair", async () => {
    const { browser } = await signUpInCookies(server);
    const tabs = [0, 1, 2].map(() => {
      const jar = new CookieJar();
      for (const [k, v] of browser.jar.cookies) jar.cookies.set(k, v);
      return browserOn(server, PUBLIC_ORIGIN, jar);
    });
    const answers = await Promise.all(tabs.map((tab) => tab.request("POST", "/auth/refresh")));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const successors = new Set(tabs.map((tab) => tab.jar.cookies.get("auth_rt")));
    expect(successors.size).toBe(1);
    clock.advance(5);
    // A tab that was late by a few seconds still gets the same pair.
    const late = browserOn(server, PUBLIC_ORIGIN, new CookieJar());
    for (const [k, v] of browser.jar.cookies) late.jar.cookies.set(k, v);
    expect((await late.request("POST", "/auth/refresh")).status).toBe(200);
    expect(late.jar.cookies.get("auth_rt")).toBe([...successors][0]);
    for (const tab of [...tabs, late]) expect((await tab.request("GET", "/auth/me")).status).toBe(200);
    // And the chain goes on from there.
    expect((await tabs[0]?.request("POST", "/auth/refresh"))?.status).toBe(200);
  });

  test("theft: the old refresh cookie after the grace ends the session for everyone", async () => {
    const { browser } = await signUpInCookies(server);
    const stolen = new CookieJar();
    for (const [k, v] of browser.jar.cookies) stolen.cookies.set(k, v);
    expect((await browser.request("POST", "/auth/refresh")).status).toBe(200);
    clock.advance(11);
    const thief = browserOn(server, PUBLIC_ORIGIN, stolen);
    const reuse = await thief.request("POST", "/auth/refresh");
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe("REFRESH_TOKEN_REUSED");
    expect(reuse.headers.getSetCookie()).toEqual([]);
    expect((await browser.request("GET", "/auth/me")).status).toBe(401);
    expect((await browser.request("POST", "/auth/refresh")).status).toBe(401);
  });

  test("from a stranger's page: 403 CSRF_REJECTED, and the cookie was not spent", async () => {
    const { browser } = await signUpInCookies(server);
    const before = browser.jar.cookies.get("auth_rt");
    for (const headers of [{ origin: EVIL_ORIGIN }, { origin: "null" }, {}] as Record<string, string>[]) {
      const res = await browserOn(server, null, browser.jar).request("POST", "/auth/refresh", { headers });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("CSRF_REJECTED");
    }
    expect(browser.jar.cookies.get("auth_rt")).toBe(before);
    clock.advance(60);
    expect((await browser.request("POST", "/auth/refresh")).status).toBe(200);
  });

  test("a refresh token in the body with X-Auth-Cookies: 1 moves a session into cookies", async () => {
    const { tokens } = await createSignedInUser(server);
    const browser = browserOn(server, PUBLIC_ORIGIN);
    const res = await browser.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken }, headers: COOKIE_MODE });
    expect(res.status).toBe(200);
    expectStrippedTokenResponse(res.body);
    expect((await browser.request("GET", "/auth/me")).status).toBe(200);
  });
});

describe("POST /auth/reauth from a browser", () => {
  test("with X-Auth-Cookies: 1 the renewed pair comes back in cookies only, and the new access cookie carries the fresh auth_time", async () => {
    const { browser } = await signUpInCookies(server);
    clock.advance(301);
    const before = browser.jar.cookies.get("auth_at");
    const res = await browser.request("POST", "/auth/reauth", { body: { password: PASSWORD }, headers: COOKIE_MODE });
    expect(res.status).toBe(200);
    expectStrippedTokenResponse(res.body);
    const set = setCookies(res.headers);
    expect([...set.keys()].sort()).toEqual(["auth_at", "auth_rt"]);
    const after = browser.jar.cookies.get("auth_at") ?? "";
    expect(after).not.toBe(before);
    const claims = JSON.parse(Buffer.from(after.split(".")[1] ?? "", "base64url").toString("utf8")) as { auth_time: number };
    expect(Math.abs(claims.auth_time - Math.floor(clock.now().getTime() / 1000))).toBeLessThanOrEqual(1);
    expect((await browser.request("GET", "/auth/me")).status).toBe(200);
  });
});

describe("logout", () => {
  test("clears both cookies (Max-Age=0, Path=/) and the old access cookie is refused at once", async () => {
    const { browser } = await signUpInCookies(server);
    const kept = new CookieJar();
    for (const [k, v] of browser.jar.cookies) kept.cookies.set(k, v);
    const res = await browser.request("POST", "/auth/logout");
    expect(res.status).toBe(204);
    const set = setCookies(res.headers);
    for (const name of ["auth_at", "auth_rt"]) {
      expect(set.get(name)?.value).toBe("");
      expect(set.get(name)?.attributes).toEqual({ "max-age": "0", path: "/", httponly: "", samesite: "Lax" });
    }
    expect(browser.jar.cookies.size).toBe(0);
    const replay = browserOn(server, PUBLIC_ORIGIN, kept);
    expect((await replay.request("GET", "/auth/me")).status).toBe(401);
    expect((await replay.request("POST", "/auth/refresh")).status).toBe(401);
  });

  test("on an https PUBLIC_URL the __Host- cookies are cleared, Secure", async () => {
    const secure = await createTestServer({ PUBLIC_URL: "https://auth.example.com", APP_URL: "https://app.example.com" });
    try {
      const { browser } = await signUpInCookies(secure, "https://auth.example.com");
      const res = await browser.request("POST", "/auth/logout");
      expect(res.status).toBe(204);
      const set = setCookies(res.headers);
      for (const name of ["__Host-auth_at", "__Host-auth_rt"]) {
        expect(set.get(name)?.attributes).toEqual({ "max-age": "0", path: "/", httponly: "", secure: "", samesite: "Lax" });
      }
    } finally {
      await secure.close();
    }
  });

  test("account deletion clears them too", async () => {
    const { browser } = await signUpInCookies(server);
    const res = await browser.request("DELETE", "/auth/me");
    expect(res.status).toBe(204);
    expect(browser.jar.cookies.size).toBe(0);
  });
});

test("a session revoked on one instance refuses its cookies at once on another", async () => {
  const options = {
    DATABASE_URL: backend.databaseUrl,
    REDIS_URL: backend.redisUrl,
    KV_PREFIX: `cookies:${crypto.randomUUID()}:`,
    PASSWORD_HASH_MEMORY_KIB: 4096,
    PASSWORD_HASH_TIME_COST: 1,
    LOG_LEVEL: "silent",
  };
  const shared = backend.databaseUrl && backend.redisUrl ? {} : { database: await testDatabase(), kv: testStore() };
  const [a, b] = await Promise.all([buildAuthServer(options, shared), buildAuthServer(options, shared)]);
  try {
    const on = (instance: typeof a, jar: CookieJar, method: string, path: string, init: RequestInit = {}) =>
      instance.app
        .handle(new Request(`http://localhost${path}`, { method, ...init, headers: { origin: PUBLIC_ORIGIN, cookie: jar.header(), ...init.headers } }))
        .then((res) => {
          jar.store(res.headers);
          return res;
        });
    const jar = new CookieJar();
    const signUp = await on(a, jar, "POST", "/auth/register", {
      headers: { "content-type": "application/json", ...COOKIE_MODE },
      body: JSON.stringify({ email: uniqueEmail("multi"), password: PASSWORD }),
    });
    expect(signUp.status).toBe(201);
    const kept = new CookieJar();
    for (const [k, v] of jar.cookies) kept.cookies.set(k, v);
    expect((await on(b, jar, "GET", "/auth/me")).status).toBe(200);
    expect((await on(b, jar, "POST", "/auth/logout")).status).toBe(204);
    expect((await on(a, kept, "GET", "/auth/me")).status).toBe(401);
    expect((await on(a, kept, "POST", "/auth/refresh")).status).toBe(401);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await Promise.allSettled([shared.database?.close(), shared.kv?.close()]);
  }
});

describe("CORS", () => {
  test("with credentials, for CORS_ORIGINS only; the cookie-mode header is allowed", async () => {
    const preflight = (origin: string) =>
      server.request("OPTIONS", "/auth/login", {
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-auth-cookies" },
      });
    const trusted = await preflight(APP_ORIGIN);
    expect(trusted.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(trusted.headers.get("access-control-allow-credentials")).toBe("true");
    expect(trusted.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-auth-cookies");
    const stranger = await preflight(EVIL_ORIGIN);
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
    const simple = await server.request("GET", "/auth/me", { headers: { origin: EVIL_ORIGIN } });
    expect(simple.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("PUBLIC_URL", () => {
  const settings = {
    APP_URL: "https://app.example.com",
    PUBLIC_URL: "https://auth.example.com/",
    OAUTH_GITHUB_CLIENT_ID: "client",
    OAUTH_GITHUB_CLIENT_SECRET: "secret",
    OAUTH_GITHUB_AUTHORIZATION_URL: "http://127.0.0.1:9/authorize",
  };

  test("the OAuth callback is PUBLIC_URL + AUTH_BASE_PATH + /oauth/:provider/callback", async () => {
    const s = await createTestServer(settings);
    try {
      const res = await s.request("GET", "/auth/oauth/github");
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get("location") ?? "");
      expect(location.searchParams.get("redirect_uri")).toBe("https://auth.example.com/auth/oauth/github/callback");
    } finally {
      await s.close();
    }
  });

  test("tokens are issued by PUBLIC_URL for APP_URL; emailed links stay under APP_URL", async () => {
    const s = await createTestServer(settings);
    try {
      const email = uniqueEmail("public");
      const res = await s.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
      const claims = JSON.parse(Buffer.from(res.body.accessToken.split(".")[1], "base64url").toString());
      expect(claims.iss).toBe("https://auth.example.com/");
      expect(claims.aud).toBe("https://app.example.com");
      expect((await s.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
      expect((await s.mailTo(email, /reset-password/)).text).toContain("https://app.example.com/reset-password?token=");
    } finally {
      await s.close();
    }
  });

  test("defaults to APP_URL; JWT_ISSUER and JWT_AUDIENCE still win; a wrong value names PUBLIC_URL", () => {
    const byDefault = loadConfig({});
    expect(byDefault.publicUrl).toBe("http://localhost:3000");
    expect(byDefault.issuer).toBe("http://localhost:3000");
    const set = loadConfig({ PUBLIC_URL: "https://auth.example.com", JWT_ISSUER: "iss", JWT_AUDIENCE: "aud" });
    expect([set.issuer, set.audience]).toEqual(["iss", "aud"]);
    expect(() => loadConfig({ PUBLIC_URL: "ftp://auth.example.com" })).toThrow(/PUBLIC_URL/);
    expect(() => loadConfig({ PUBLIC_URL: "not a url" })).toThrow(/PUBLIC_URL/);
  });
});

test("a standalone server whose app lives elsewhere finishes a redirect sign-in at PUBLIC_URL, and the exchange answers in cookies", async () => {
  const publicUrl = "http://localhost:3000";
  const callback = `${publicUrl}/auth/oauth/oidc/callback`;
  const idp = await startTestIdp(callback);
  const s = await createTestServer({
    APP_URL: APP_ORIGIN,
    PUBLIC_URL: publicUrl,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: idp.clientId,
    OIDC_CLIENT_SECRET: idp.clientSecret,
  });
  try {
    const account = idp.addAccount({ sub: `person-${crypto.randomUUID()}`, email: uniqueEmail("idp"), email_verified: true });
    const start = await s.request("GET", "/auth/oauth/oidc");
    expect(start.status).toBe(302);
    // The provider accepts only the registered redirect_uri: under PUBLIC_URL, not the app's APP_URL.
    const back = await idp.authorize(start.headers.get("location") ?? "", account.sub, callback);
    // The flow is bound to the browser that started it: the callback brings back the flow cookie.
    const flowCookie = start.headers.getSetCookie()[0]?.split(";")[0] ?? "";
    const landed = await s.request("GET", `/auth/oauth/oidc/callback${back.search}`, { headers: { cookie: flowCookie } });
    const target = new URL(landed.headers.get("location") ?? "");
    expect(target.origin).toBe(APP_ORIGIN);
    const browser = browserOn(s, APP_ORIGIN);
    const exchanged = await browser.request("POST", "/auth/oauth/exchange", { body: { code: target.searchParams.get("code") }, headers: COOKIE_MODE });
    expect(exchanged.status).toBe(200);
    expectStrippedTokenResponse(exchanged.body);
    expect((await browser.request("GET", "/auth/me")).body.email).toBe(account.email);
  } finally {
    await s.close();
    await idp.close();
  }
});

test("admin routes take the cookie too, under the same CSRF rule", async () => {
  const email = uniqueEmail("admin");
  const s = await createTestServer({ ADMIN_EMAILS: email });
  try {
    await s.ctx.users.create({ email, emailVerified: true, passwordHash: await s.ctx.passwords.hash(PASSWORD) });
    const browser = browserOn(s, PUBLIC_ORIGIN);
    expect((await browser.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: COOKIE_MODE })).status).toBe(200);
    const listed = await browser.request("GET", "/auth/admin/users");
    expect(listed.status).toBe(200);
    const target = await s.ctx.users.create({ email: uniqueEmail("target"), emailVerified: true });
    const forged = await browserOn(s, EVIL_ORIGIN, browser.jar).request("POST", `/auth/admin/users/${target.id}/ban`, { body: {} });
    expect(forged.status).toBe(403);
    expect(forged.body.code).toBe("CSRF_REJECTED");
    expect((await browser.request("GET", `/auth/admin/users/${target.id}`)).body.banned).toBe(false);
    expect((await browser.request("POST", `/auth/admin/users/${target.id}/ban`, { body: {} })).status).toBe(200);
  } finally {
    await s.close();
  }
});

test("the OpenAPI spec documents the cookies, the cookie-mode header and CSRF_REJECTED", async () => {
  const spec = (await server.request("GET", "/docs/json")).body;
  expect(spec.components.securitySchemes.cookie).toEqual({ type: "apiKey", in: "cookie", name: "auth_at", description: expect.any(String) });
  expect(spec.info.description).toContain("X-Auth-Cookies");
  expect(spec.info.description).toContain("CSRF_REJECTED");
  expect(JSON.stringify(spec.paths["/auth/refresh"].post)).toContain("auth_rt");
});
