import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PASSWORD, registerUser } from "../support/admin";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { movableClock } from "../support/users";

// Each test signs users in (argon2); on a loaded shared machine 5 s is too tight.
setDefaultTimeout(30_000);

const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({}, { clock });
}, 60_000);
afterAll(() => server.close());

const ID = "0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee";
/** The admin routes that change something, with bodies that would be valid. */
const CHANGING: Array<[string, string, unknown?]> = [
  ["POST", "/auth/admin/users", { email: "new@example.com", password: PASSWORD }],
  ["PATCH", `/auth/admin/users/${ID}`, { firstName: "X" }],
  ["POST", `/auth/admin/users/${ID}/ban`, { reason: "x" }],
  ["POST", `/auth/admin/users/${ID}/unban`],
  ["DELETE", `/auth/admin/users/${ID}`],
  ["DELETE", `/auth/admin/users/${ID}/sessions`],
  ["POST", `/auth/admin/users/${ID}/mfa/reset`],
  ["POST", `/auth/admin/users/${ID}/impersonate`],
];

/** An admin with a password, signed in through the login route (a fresh proof). */
async function signedInAdmin() {
  const email = uniqueEmail("stepup-admin");
  await server.ctx.users.create({ email, emailVerified: true, roles: ["user", "admin"], passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { email, token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
}

describe("step-up on the admin routes that change something", () => {
  test("a sign-in older than REAUTH_MAX_AGE_S: 403 REAUTH_REQUIRED on each, before the body; reads still answer; a reauth lets it through", async () => {
    const admin = await signedInAdmin();
    const member = await registerUser(server);
    clock.advance(301);
    for (const [method, path, body] of CHANGING) {
      for (const sent of [body, { email: 7, reason: [] }]) {
        const res = await server.request(method, path, { body: sent, token: admin.token });
        expect({ route: `${method} ${path}`, status: res.status, code: res.body?.code }).toEqual({ route: `${method} ${path}`, status: 403, code: "REAUTH_REQUIRED" });
      }
    }
    expect((await server.request("GET", "/auth/admin/users?limit=1", { token: admin.token })).status).toBe(200);
    expect((await server.request("GET", "/auth/admin/audit?limit=1", { token: admin.token })).status).toBe(200);

    // A refresh does not renew the proof; a reauth does.
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: admin.refreshToken } });
    expect((await server.request("POST", `/auth/admin/users/${member.id}/ban`, { body: {}, token: refreshed.body.accessToken })).body.code).toBe("REAUTH_REQUIRED");
    const reauth = await server.request("POST", "/auth/reauth", { body: { password: PASSWORD }, token: refreshed.body.accessToken });
    expect(reauth.status).toBe(200);
    const banned = await server.request("POST", `/auth/admin/users/${member.id}/ban`, { body: {}, token: reauth.body.accessToken });
    expect(banned.status).toBe(200);
    expect(banned.body.banned).toBe(true);
  });

  test("a member is told FORBIDDEN, not asked to step up; an impersonation token is refused either way", async () => {
    const admin = await signedInAdmin();
    const member = await registerUser(server);
    clock.advance(301);
    for (const [method, path, body] of CHANGING) {
      const res = await server.request(method, path, { body, token: member.token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
    const fresh = await server.request("POST", "/auth/login", { body: { email: admin.email, password: PASSWORD } });
    const target = await registerUser(server);
    const imp = await server.request("POST", `/auth/admin/users/${target.id}/impersonate`, { token: fresh.body.accessToken });
    expect(imp.status).toBe(200);
    for (const [method, path, body] of CHANGING) expect((await server.request(method, path, { body, token: imp.body.accessToken })).status).toBe(403);
    // Step-up elsewhere refuses it too: the impersonated user's own account cannot be deleted with it.
    const deleteMe = await server.request("DELETE", "/auth/me", { token: imp.body.accessToken });
    expect(deleteMe.status).toBe(403);
    expect(deleteMe.body.code).toBe("REAUTH_REQUIRED");
  });
});
