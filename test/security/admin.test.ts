import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { claimsOf, newAdmin, PASSWORD, registerUser } from "../support/admin";
import { startTestIdp, type TestIdp } from "../support/oidc-provider";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

// Each test signs users in (argon2) and sends mail; on a loaded shared machine 5 s is too tight.
setDefaultTimeout(30_000);

const APP_URL = "http://localhost:3000";
let idp: TestIdp;
let server: TestServer;

beforeAll(async () => {
  idp = await startTestIdp(`${APP_URL}/auth/oauth/oidc/callback`);
  server = await createTestServer({ APP_URL, OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
}, 60_000);
afterAll(async () => {
  await server.close();
  await idp.close();
});

const ID = "0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee";
/** Every admin route, with a body that would be valid, so only the caller decides the answer. */
const ROUTES: Array<[string, string, unknown?]> = [
  ["GET", "/auth/admin/users"],
  ["GET", `/auth/admin/users/${ID}`],
  ["POST", "/auth/admin/users", { email: "new@example.com", password: PASSWORD }],
  ["PATCH", `/auth/admin/users/${ID}`, { firstName: "X" }],
  ["POST", `/auth/admin/users/${ID}/ban`, { reason: "x" }],
  ["POST", `/auth/admin/users/${ID}/unban`],
  ["DELETE", `/auth/admin/users/${ID}`],
  ["DELETE", `/auth/admin/users/${ID}/sessions`],
  ["POST", `/auth/admin/users/${ID}/mfa/reset`],
  ["POST", `/auth/admin/users/${ID}/impersonate`],
  ["GET", "/auth/admin/audit"],
];

async function everyRouteAnswers(token: string | undefined, status: number, code: string) {
  for (const [method, path, body] of ROUTES) {
    const res = await server.request(method, path, { body, token });
    expect({ route: `${method} ${path}`, status: res.status, code: res.body?.code }).toEqual({ route: `${method} ${path}`, status, code });
    // An invalid body changes nothing: the caller is refused before the body is looked at.
    if (body !== undefined) expect((await server.request(method, path, { body: { email: 7, reason: [] }, token })).status).toBe(status);
  }
}

describe("who may call /auth/admin/*", () => {
  test("nobody without a token: 401 on every route", async () => {
    await everyRouteAnswers(undefined, 401, "UNAUTHORIZED");
  });

  test("a member: 403 FORBIDDEN on every route, whatever the body", async () => {
    const member = await registerUser(server);
    await everyRouteAnswers(member.token, 403, "FORBIDDEN");
  });

  test("a token whose roles claim admin but whose user is not one (forged roles can't be signed; roles are read from the database)", async () => {
    const member = await registerUser(server);
    // The role is granted and taken away behind the token's back, without the session revocation an API change does.
    await server.ctx.users.update(member.id, { roles: ["user", "admin"] });
    const promoted = await server.ctx.sessions.create((await server.ctx.users.findById(member.id))!, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
    expect(claimsOf(promoted.accessToken).roles).toContain("admin");
    await server.ctx.users.update(member.id, { roles: ["user"] });
    expect((await server.request("GET", "/auth/admin/users", { token: promoted.accessToken })).status).toBe(403);
  });

  test("an impersonation token, even of a user made admin since: 403 FORBIDDEN on every route", async () => {
    const boss = await newAdmin(server);
    const member = await registerUser(server);
    const imp = await server.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: boss.token });
    expect(imp.status).toBe(200);
    await everyRouteAnswers(imp.body.accessToken, 403, "FORBIDDEN");
  });

  test("a stale token of an admin demoted since: 401 on every route (the role change ended the session)", async () => {
    const boss = await newAdmin(server);
    const demoted = await newAdmin(server);
    expect((await server.request("GET", "/auth/admin/users?limit=1", { token: demoted.token })).status).toBe(200);
    expect((await server.request("PATCH", `/auth/admin/users/${demoted.user.id}`, { body: { roles: ["user"] }, token: boss.token })).status).toBe(200);
    await everyRouteAnswers(demoted.token, 401, "SESSION_REVOKED");
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: demoted.refreshToken } });
    expect(refreshed.status).toBe(401);
  });

  test("a stale token of an admin banned since: 401 on every route", async () => {
    const boss = await newAdmin(server);
    const banned = await newAdmin(server);
    expect((await server.request("POST", `/auth/admin/users/${banned.user.id}/ban`, { body: {}, token: boss.token })).status).toBe(200);
    await everyRouteAnswers(banned.token, 401, "SESSION_REVOKED");
  });
});

describe("impersonation cannot be stretched", () => {
  test("no refresh token exists for it; its session cannot be refreshed, and it is not a way to mint more", async () => {
    const boss = await newAdmin(server);
    const member = await registerUser(server);
    const imp = await server.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: boss.token });
    expect(imp.body.refreshToken).toBeUndefined();
    expect(imp.text).not.toContain("refreshToken");
    const again = await server.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: imp.body.accessToken });
    expect(again.status).toBe(403);
  });

  test("a team switch mints no pair from it: 403, and no token without `act` (one that would pass step-up) comes out", async () => {
    const boss = await newAdmin(server);
    const member = await registerUser(server);
    const team = await server.request("POST", "/auth/teams", { token: member.token, body: { name: "Imp Co" } });
    expect(team.status).toBe(201);
    const imp = await server.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: boss.token });
    const switched = await server.request("POST", "/auth/teams/switch", { token: imp.body.accessToken, body: { teamId: team.body.id } });
    expect(switched.status).toBe(403);
    expect(switched.body.accessToken).toBeUndefined();
    expect(switched.body.refreshToken).toBeUndefined();
    // The session still acts for no team: the refused switch changed nothing.
    expect(claimsOf((await server.request("POST", "/auth/teams/switch", { token: member.token, body: { teamId: team.body.id } })).body.accessToken).team).toBeDefined();
    expect((await server.request("GET", "/auth/session", { token: imp.body.accessToken })).body.session.teamId).toBeNull();
  });

  test("no route that signs in, signs up or joins as the caller takes it: 403, nothing made or upgraded", async () => {
    const boss = await newAdmin(server);
    const guest = await server.request("POST", "/auth/anonymous", {});
    const imp = await server.request("POST", `/auth/admin/users/${guest.body.user.id}/impersonate`, { token: boss.token });
    const token = imp.body.accessToken as string;
    const email = uniqueEmail("imp-upgrade");
    const attempts = [
      await server.request("POST", "/auth/register", { token, body: { email, password: PASSWORD } }),
      await server.request("POST", "/auth/code/verify", { token, body: { email, code: "123456" } }),
      await server.request("POST", "/auth/invitations/accept", { token, body: { token: "x".repeat(43) } }),
      await server.request("POST", "/auth/oauth/oidc/token", {
        token,
        body: { idToken: await idp.signIdToken({ sub: `imp-${crypto.randomUUID()}`, email, email_verified: true, iss: idp.issuer, aud: idp.clientId }) },
      }),
    ];
    for (const res of attempts) {
      expect(res.status).toBe(403);
      expect(res.body.accessToken).toBeUndefined();
    }
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
    expect((await server.ctx.users.findById(guest.body.user.id))?.isAnonymous).toBe(true);
  });
});

describe("an impersonation lasts while its admin may impersonate", () => {
  for (const [name, end] of [
    ["banned", (s: TestServer, adminId: string, by: string) => s.request("POST", `/auth/admin/users/${adminId}/ban`, { body: {}, token: by })],
    ["deleted", (s: TestServer, adminId: string, by: string) => s.request("DELETE", `/auth/admin/users/${adminId}`, { token: by })],
    ["no longer an admin", (s: TestServer, adminId: string, by: string) => s.request("PATCH", `/auth/admin/users/${adminId}`, { body: { roles: ["user"] }, token: by })],
  ] as const) {
    test(`its admin ${name} by another: the impersonation token is refused at once (401), the user's own token is not`, async () => {
      const first = await newAdmin(server);
      const second = await newAdmin(server);
      const member = await registerUser(server);
      const imp = await server.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: first.token });
      expect((await server.request("GET", "/auth/me", { token: imp.body.accessToken })).status).toBe(200);
      const ended = await end(server, first.user.id, second.token);
      expect(ended.status).toBeLessThan(300);
      const me = await server.request("GET", "/auth/me", { token: imp.body.accessToken });
      expect(me.status).toBe(401);
      expect((await server.request("PATCH", "/auth/me", { token: imp.body.accessToken, body: { firstName: "Mallory" } })).status).toBe(401);
      expect((await server.request("GET", "/auth/me", { token: member.token })).body.firstName).not.toBe("Mallory");
    });
  }
});

describe("a ban closes every door", () => {
  test("OAuth: a provider sign-in of a banned account answers 403 USER_BANNED", async () => {
    const boss = await newAdmin(server);
    const email = uniqueEmail("idp");
    const sub = `banned-${crypto.randomUUID().slice(0, 8)}`;
    const idToken = () => idp.signIdToken({ sub, email, email_verified: true, iss: idp.issuer, aud: idp.clientId });
    const first = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: await idToken() } });
    expect(first.status).toBe(200);
    await server.request("POST", `/auth/admin/users/${first.body.user.id}/ban`, { body: {}, token: boss.token });
    const res = await server.request("POST", "/auth/oauth/oidc/token", { body: { idToken: await idToken() } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("USER_BANNED");
    expect((await server.request("GET", "/auth/me", { token: first.body.accessToken })).status).toBe(401);
  });

  test("email verification code: 403 USER_BANNED; a resend or a new registration of the address mails nothing", async () => {
    const strict = await createTestServer({ REQUIRE_EMAIL_VERIFICATION: "true" });
    try {
      const boss = await newAdmin(strict);
      const email = uniqueEmail("unverified");
      expect((await strict.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(202);
      const code = /(\d{6})/.exec((await strict.mailTo(email, /\d{6}/)).text)?.[1];
      const user = await strict.ctx.users.findByEmail(email);
      await strict.request("POST", `/auth/admin/users/${user?.id}/ban`, { body: {}, token: boss.token });
      const sent = strict.mailer.outbox.length;
      expect((await strict.request("POST", "/auth/email/verify/resend", { body: { email } })).status).toBe(202);
      expect((await strict.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(202);
      const res = await strict.request("POST", "/auth/email/verify", { body: { email, code } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("USER_BANNED");
      await Bun.sleep(100);
      expect(strict.mailer.outbox.slice(sent).filter((m) => m.to === email)).toHaveLength(0);
    } finally {
      await strict.close();
    }
  }, 30_000);

  test("a ban racing refreshes: once the ban answers, no token of the user works and no refresh succeeds", async () => {
    const boss = await newAdmin(server);
    for (let round = 0; round < 3; round++) {
      const member = await registerUser(server);
      let refreshToken = member.refreshToken;
      const issued: string[] = [member.token];
      const refresher = (async () => {
        for (let i = 0; i < 15; i++) {
          const res = await server.request("POST", "/auth/refresh", { body: { refreshToken } });
          if (res.status !== 200) return;
          refreshToken = res.body.refreshToken;
          issued.push(res.body.accessToken);
        }
      })();
      await Bun.sleep(round * 3);
      const ban = await server.request("POST", `/auth/admin/users/${member.id}/ban`, { body: {}, token: boss.token });
      expect(ban.status).toBe(200);
      await refresher;
      for (const token of issued) expect((await server.request("GET", "/auth/me", { token })).status).toBe(401);
      expect((await server.request("POST", "/auth/refresh", { body: { refreshToken } })).status).toBe(401);
    }
  }, 30_000);

  test("a ban racing password sign-ins: once both are done, no session of the user is left alive", async () => {
    const boss = await newAdmin(server);
    const member = await registerUser(server);
    const logins = Array.from({ length: 6 }, (_, i) =>
      Bun.sleep(i * 2).then(() => server.request("POST", "/auth/login", { body: { email: member.email, password: PASSWORD } })),
    );
    const ban = server.request("POST", `/auth/admin/users/${member.id}/ban`, { body: {}, token: boss.token });
    const answers = await Promise.all(logins);
    expect((await ban).status).toBe(200);
    for (const res of answers) {
      expect([200, 403]).toContain(res.status);
      if (res.status === 200) expect((await server.request("GET", "/auth/me", { token: res.body.accessToken })).status).toBe(401);
    }
    const live = await server.request("GET", `/auth/admin/users/${member.id}`, { token: boss.token });
    expect(live.body.sessions).toEqual([]);
  }, 30_000);
});
