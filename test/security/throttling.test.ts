import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/** Checklist: throttling that cannot be dodged by changing the client IP or by racing, and that does not lock owners out. */
const PASSWORD = "plum-kettle-orbit-93";
const NEW_PASSWORD = "velvet-canyon-lantern-17";
const servers: TestServer[] = [];
let trusting: TestServer;
let direct: TestServer;

beforeAll(async () => {
  const limits = { RATE_LIMIT_LOGIN_EMAIL: "5/60", RATE_LIMIT_LOGIN_IP: "10000/60", REQUIRE_EMAIL_VERIFICATION: true };
  trusting = await createTestServer({ ...limits, TRUST_PROXY: true });
  direct = await createTestServer({ ...limits, TRUST_PROXY: false });
  servers.push(trusting, direct);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function verifiedUser(server: TestServer): Promise<string> {
  const email = uniqueEmail("victim");
  await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  return email;
}

const codeIn = (server: TestServer, email: string) => /\b(\d{6})\b/.exec(server.mailer.last(email)?.text ?? "")?.[1] ?? "";
/** Six-digit guesses that are certainly wrong. */
const wrongCodes = (right: string, n: number) =>
  Array.from({ length: n }, (_, i) => String(i).padStart(6, "0")).map((c) => (c === right ? "999999" : c));

describe("per-account login limit", () => {
  for (const [label, get] of [["TRUST_PROXY=true", () => trusting], ["TRUST_PROXY=false", () => direct]] as const) {
    test(`holds however X-Forwarded-For changes (${label}), even for the right password`, async () => {
      const server = get();
      const email = await verifiedUser(server);
      for (let i = 0; i < 5; i++) {
        const res = await server.request("POST", "/auth/login", {
          body: { email, password: `wrong-${i}-guess-abc` },
          headers: { "x-forwarded-for": `198.51.100.${i + 1}` },
        });
        expect(res.status).toBe(401);
      }
      const blocked = await server.request("POST", "/auth/login", {
        body: { email, password: PASSWORD },
        headers: { "x-forwarded-for": "203.0.113.250" },
      });
      expect(blocked.status).toBe(429);
      expect(blocked.body.code).toBe("RATE_LIMITED");
      expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    });
  }

  test("holds across the account's names: alternating email and username does not double the guesses", async () => {
    const email = uniqueEmail("names");
    const username = `u${crypto.randomUUID().slice(0, 10)}`;
    await direct.ctx.users.create({ email, username, emailVerified: true, passwordHash: await direct.ctx.passwords.hash(PASSWORD) });
    for (let i = 0; i < 5; i++) {
      const body = i % 2 ? { email, password: `wrong-${i}-guess-abc` } : { username, password: `wrong-${i}-guess-abc` };
      expect((await direct.request("POST", "/auth/login", { body })).status).toBe(401);
    }
    expect((await direct.request("POST", "/auth/login", { body: { username: username.toUpperCase(), password: PASSWORD } })).status).toBe(429);
    expect((await direct.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(429);
  });

  test("TRUST_PROXY=false: X-Forwarded-For is ignored, so a changing header does not dodge the per-IP limit", async () => {
    const server = await createTestServer({ RATE_LIMIT_LOGIN_IP: "3/60", TRUST_PROXY: false });
    servers.push(server);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await server.request("POST", "/auth/login", {
        body: { email: uniqueEmail("ip"), password: PASSWORD },
        headers: { "x-forwarded-for": `198.51.100.${i + 10}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  test("a locked-out victim still gets in through the reset flow", async () => {
    const email = await verifiedUser(trusting);
    for (let i = 0; i < 6; i++) await trusting.request("POST", "/auth/login", { body: { email, password: `attacker-${i}-guess` } });
    expect((await trusting.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(429);
    expect((await trusting.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
    const token = /token=([\w-]+)/.exec((await trusting.mailTo(email, /token=/)).text)?.[1];
    expect(token).toBeDefined();
    expect((await trusting.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } })).status).toBe(204);
    const login = await trusting.request("POST", "/auth/login", { body: { email, password: NEW_PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.accessToken).toBeString();
  });
});

describe("mail bombing", () => {
  test("register with REQUIRE_EMAIL_VERIFICATION mails an address at most RATE_LIMIT_CODE_EMAIL times, taken or free alike", async () => {
    const server = await createTestServer({ REQUIRE_EMAIL_VERIFICATION: true, RATE_LIMIT_CODE_EMAIL: "3/600" });
    servers.push(server);
    const taken = await verifiedUser(server);
    const free = uniqueEmail("free");
    for (const email of [taken, free]) {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status);
      expect(statuses).toEqual([202, 202, 202, 429]);
      await Bun.sleep(0);
      expect(server.mailer.outbox.filter((m) => m.to === email).length).toBe(3);
    }
  });
});

describe("parallel guesses of six-digit codes", () => {
  test("50 parallel wrong magic codes evaluate no more than the cap: the right code sent after them fails", async () => {
    const email = uniqueEmail("magic");
    await direct.request("POST", "/auth/code/request", { body: { email } });
    await Bun.sleep(0);
    const right = codeIn(direct, email);
    expect(right).toMatch(/^\d{6}$/);
    const guesses = await Promise.all(wrongCodes(right, 50).map((code) => direct.request("POST", "/auth/code/verify", { body: { email, code } })));
    for (const res of guesses) expect(res.status).toBe(400);
    const late = await direct.request("POST", "/auth/code/verify", { body: { email, code: right } });
    expect(late.status).toBe(400);
    expect(late.body.code).toBe("INVALID_CODE");
  });

  test("50 parallel wrong email verification codes evaluate no more than the cap: the right code sent after them fails", async () => {
    const email = uniqueEmail("verify");
    expect((await direct.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(202);
    await Bun.sleep(0);
    const right = codeIn(direct, email);
    expect(right).toMatch(/^\d{6}$/);
    const guesses = await Promise.all(wrongCodes(right, 50).map((code) => direct.request("POST", "/auth/email/verify", { body: { email, code } })));
    for (const res of guesses) expect(res.status).toBe(400);
    expect((await direct.request("POST", "/auth/email/verify", { body: { email, code: right } })).status).toBe(400);
  });

  test("5 wrong tries kill a code, not the address: the next code has 5 tries of its own", async () => {
    const email = uniqueEmail("again");
    await direct.request("POST", "/auth/code/request", { body: { email } });
    await Bun.sleep(0);
    const first = codeIn(direct, email);
    for (const code of wrongCodes(first, 5)) await direct.request("POST", "/auth/code/verify", { body: { email, code } });
    expect((await direct.request("POST", "/auth/code/verify", { body: { email, code: first } })).body.code).toBe("INVALID_CODE");
    await direct.request("POST", "/auth/code/request", { body: { email } });
    await Bun.sleep(0);
    const second = codeIn(direct, email);
    for (const code of wrongCodes(second, 4)) await direct.request("POST", "/auth/code/verify", { body: { email, code } });
    const res = await direct.request("POST", "/auth/code/verify", { body: { email, code: second } });
    expect(res.status).toBe(200);
    expect(res.body.tokenType).toBe("Bearer");
  });

  test("guesses sent before any code exists do not lock out the code the owner asks for next", async () => {
    const email = uniqueEmail("lockout");
    for (let i = 0; i < 6; i++) {
      const res = await direct.request("POST", "/auth/code/verify", { body: { email, code: String(100000 + i) } });
      expect(res.body.code).toBe("INVALID_CODE");
    }
    await direct.request("POST", "/auth/code/request", { body: { email } });
    await Bun.sleep(0);
    const res = await direct.request("POST", "/auth/code/verify", { body: { email, code: codeIn(direct, email) } });
    expect(res.status).toBe(200);
  });

  test("the same holds for email verification codes: a resent code is not spoiled by guesses at the first", async () => {
    const email = uniqueEmail("resend");
    expect((await direct.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(202);
    await Bun.sleep(0);
    const first = codeIn(direct, email);
    for (const code of wrongCodes(first, 5)) await direct.request("POST", "/auth/email/verify", { body: { email, code } });
    expect((await direct.request("POST", "/auth/email/verify/resend", { body: { email } })).status).toBe(202);
    await Bun.sleep(0);
    const second = codeIn(direct, email);
    expect((await direct.request("POST", "/auth/email/verify", { body: { email, code: second } })).status).toBe(200);
  });
});

describe("hits counted together", () => {
  test("concurrent hits on one counter and on others, each with its own window, are each counted once, none lost", async () => {
    // Every hit counts against its own key, with its own window's Retry-After, however many arrive at once.
    const server = await createTestServer({ RATE_LIMIT_REFRESH_SESSION: "3/60", RATE_LIMIT_LOGIN_EMAIL: "2/600", RATE_LIMIT_LOGIN_IP: "10000/60" });
    servers.push(server);
    const signedIn = await Promise.all(Array.from({ length: 4 }, () => createSignedInUser(server)));
    const unknown = uniqueEmail("nobody");
    const [refreshes, logins] = await Promise.all([
      Promise.all(
        signedIn.map(({ tokens }) =>
          Promise.all(Array.from({ length: 6 }, () => server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } }))),
        ),
      ),
      Promise.all(Array.from({ length: 5 }, () => server.request("POST", "/auth/login", { body: { email: unknown, password: PASSWORD } }))),
    ]);
    for (const answers of refreshes) {
      const limited = answers.filter((r) => r.status === 429);
      const passed = answers.filter((r) => r.status === 200);
      expect([limited.length, passed.length]).toEqual([3, 3]);
      // One rotation; the others within the grace window get the same successor.
      expect(new Set(passed.map((r) => r.body.refreshToken)).size).toBe(1);
      for (const r of limited) expect(Number(r.headers.get("retry-after"))).toBeWithin(1, 61);
    }
    const refused = logins.filter((r) => r.status === 401);
    const limitedLogins = logins.filter((r) => r.status === 429);
    expect([refused.length, limitedLogins.length]).toEqual([2, 3]);
    for (const r of limitedLogins) expect(Number(r.headers.get("retry-after"))).toBeWithin(540, 601);
  });
});
