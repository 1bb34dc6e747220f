import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { movableClock } from "../support/users";

/** Checklist: sessions die at once when they should, and have an absolute lifetime and an idle timeout. */
const PASSWORD = "plum-kettle-orbit-93";
const NEW_PASSWORD = "velvet-canyon-lantern-17";
const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ SESSION_MAX_AGE_S: 3600, SESSION_IDLE_TIMEOUT_S: 600 }, { clock });
});
afterAll(async () => {
  await server.close();
});

type Pair = { accessToken: string; refreshToken: string };

async function userWithSessions(n: number): Promise<{ email: string; sessions: Pair[] }> {
  const email = uniqueEmail("sess");
  await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const sessions: Pair[] = [];
  for (let i = 0; i < n; i++) sessions.push((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).body);
  return { email, sessions };
}

async function expectDead(pair: Pair) {
  expect((await server.request("GET", "/auth/me", { token: pair.accessToken })).status).toBe(401);
  expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } })).status).toBe(401);
}
async function expectAlive(pair: Pair) {
  expect((await server.request("GET", "/auth/me", { token: pair.accessToken })).status).toBe(200);
}

describe("sessions die at once", () => {
  test("on logout: the access token and the refresh token stop working immediately", async () => {
    const { sessions: [a, b] } = await userWithSessions(2);
    await expectAlive(a!);
    expect((await server.request("POST", "/auth/logout", { token: a!.accessToken })).status).toBe(204);
    await expectDead(a!);
    await expectAlive(b!);
  });

  test("on password change: every other session dies, the current one lives", async () => {
    const { sessions: [a, b, c] } = await userWithSessions(3);
    await expectAlive(b!);
    const res = await server.request("POST", "/auth/password/change", { token: a!.accessToken, body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
    expect(res.status).toBe(204);
    await expectDead(b!);
    await expectDead(c!);
    await expectAlive(a!);
  });

  test("on password reset: every session dies", async () => {
    const { email, sessions } = await userWithSessions(2);
    await server.request("POST", "/auth/password/forgot", { body: { email } });
    const token = /token=([\w-]+)/.exec((await server.mailTo(email, /token=/)).text)?.[1];
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } })).status).toBe(204);
    for (const s of sessions) await expectDead(s);
  });

  test("on account deletion: every session dies", async () => {
    const { sessions: [a, b] } = await userWithSessions(2);
    expect((await server.request("DELETE", "/auth/me", { token: a!.accessToken })).status).toBe(204);
    await expectDead(a!);
    await expectDead(b!);
  });

  test("on revoking a session from another: that session dies", async () => {
    const { sessions: [a, b] } = await userWithSessions(2);
    const list = await server.request("GET", "/auth/sessions", { token: a!.accessToken });
    const other = (list.body as Array<{ id: string; current: boolean }>).find((s) => !s.current);
    expect((await server.request("DELETE", `/auth/sessions/${other!.id}`, { token: a!.accessToken })).status).toBe(204);
    await expectDead(b!);
  });
});

describe("lifetimes (SESSION_MAX_AGE_S=3600, SESSION_IDLE_TIMEOUT_S=600)", () => {
  test("idle timeout: a refresh token unused for longer than SESSION_IDLE_TIMEOUT_S is refused", async () => {
    const { sessions: [a] } = await userWithSessions(1);
    clock.advance(601);
    const res = await server.request("POST", "/auth/refresh", { body: { refreshToken: a!.refreshToken } });
    expect(res.status).toBe(401);
  });

  test("absolute lifetime: a session in constant use still ends after SESSION_MAX_AGE_S", async () => {
    const { sessions: [a] } = await userWithSessions(1);
    let refreshToken = a!.refreshToken;
    // Used every 500 s, never idle, for 3500 s: still alive.
    for (let t = 0; t < 7; t++) {
      clock.advance(500);
      const res = await server.request("POST", "/auth/refresh", { body: { refreshToken } });
      expect(res.status).toBe(200);
      refreshToken = res.body.refreshToken;
    }
    clock.advance(200);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken } })).status).toBe(401);
  });

  test("an access token dies at its exp, without waiting for a refresh", async () => {
    const { sessions: [a] } = await userWithSessions(1);
    await expectAlive(a!);
    clock.advance(server.ctx.config.ACCESS_TOKEN_TTL_S + 1);
    expect((await server.request("GET", "/auth/me", { token: a!.accessToken })).status).toBe(401);
  });
});
