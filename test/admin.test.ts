import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { and, eq } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { auditEvents, users } from "../src/db/schema";
import { passwordResetTokens } from "../plugins/password/schema";
import { recoveryCodes, totpSecrets } from "../plugins/mfa/schema";
import { grantAdmin } from "../src/plugins";
import { claimsOf, isolatedDatabase, newAdmin, PASSWORD, registerUser } from "./support/admin";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { createSignedInUser, movableClock } from "./support/users";

// Each test signs users in (argon2) and sends mail; on a loaded shared machine 5 s is too tight.
setDefaultTimeout(30_000);

const APP_URL = "https://app.example.com";
const SETTINGS_ADMIN = uniqueEmail("settings-admin");
const clock = movableClock();
let server: TestServer;
let admin: Awaited<ReturnType<typeof newAdmin>>;

beforeAll(async () => {
  server = await createTestServer({ ADMIN_EMAILS: SETTINGS_ADMIN, APP_URL }, { clock });
  admin = await newAdmin(server);
}, 60_000);
afterAll(() => server.close());

/** Access tokens outlive no clock jump past ACCESS_TOKEN_TTL_S: the admin signs in again after one. */
async function renewAdminToken() {
  admin.token = (await server.ctx.sessions.create(admin.user, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
}

const get = (path: string, token = admin.token) => server.request("GET", `/auth/admin${path}`, { token });
const post = (path: string, body?: unknown, token = admin.token) => server.request("POST", `/auth/admin${path}`, { body, token });
const patch = (path: string, body: unknown, token = admin.token) => server.request("PATCH", `/auth/admin${path}`, { body, token });
const del = (path: string, token = admin.token) => server.request("DELETE", `/auth/admin${path}`, { token });
const me = (token: string) => server.request("GET", "/auth/me", { token });
const login = (email: string, password = PASSWORD) => server.request("POST", "/auth/login", { body: { email, password } });

/** Users tagged by a last name no other test uses, so listings can be scoped on a shared database. */
async function taggedUsers(count: number, tag = `Tag${crypto.randomUUID().slice(0, 8)}`) {
  const made = [];
  for (let i = 0; i < count; i++) made.push(await server.ctx.users.create({ email: uniqueEmail("listed"), lastName: `${tag} ${i}` }));
  return { tag, made };
}

async function pageThrough(query: string, limit: number, between?: () => Promise<void>) {
  const seen: Array<{ id: string; createdAt: string }> = [];
  let cursor: string | null = null;
  do {
    const res = await get(`/users?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status).toBe(200);
    expect(res.body.users.length).toBeLessThanOrEqual(limit);
    seen.push(...res.body.users);
    cursor = res.body.nextCursor;
    if (between) await between();
  } while (cursor);
  return seen;
}

describe("blank query parameters, as the contract writes them, count as not sent", () => {
  test("the users and audit listings (and the caller's own activity) answer 200 with their defaults", async () => {
    const users = await get("/users?query=&role=&banned=&limit=&cursor=");
    expect(users.status).toBe(200);
    expect(users.body.users.length).toBeLessThanOrEqual(20);
    expect(users.body.users.length).toBeGreaterThan(0);
    const audit = await get("/audit?userId=&type=&limit=&cursor=");
    expect(audit.status).toBe(200);
    expect(Array.isArray(audit.body.events)).toBe(true);
    const own = await server.request("GET", "/auth/me/activity?limit=&before=", { token: admin.token });
    expect(own.status).toBe(200);
    // A value that is there is still checked.
    expect((await get("/users?limit=0")).status).toBe(400);
  });
});

describe("GET /auth/admin/users", () => {
  test("newest first, limit default 20, bounds 1..100, nextCursor null on the last page", async () => {
    const { tag, made } = await taggedUsers(23);
    const first = await get(`/users?query=${tag}`);
    expect(first.status).toBe(200);
    expect(first.body.users).toHaveLength(20);
    expect(first.body.users[0].id).toBe(made[22]?.id);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const rest = await get(`/users?query=${tag}&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(rest.body.users.map((u: { id: string }) => u.id)).toEqual([made[2]?.id, made[1]?.id, made[0]?.id]);
    expect(rest.body.nextCursor).toBeNull();
    for (const bad of ["0", "101", "x"]) {
      const res = await get(`/users?limit=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
    expect((await get("/users?limit=100")).status).toBe(200);
    const forged = await get("/users?cursor=not-a-cursor");
    expect(forged.status).toBe(400);
    expect(forged.body.details[0].path).toBe("cursor");
  });

  test("AdminUser carries banned, banReason, bannedUntil, lastSignInAt, updatedAt and never a password hash", async () => {
    const member = await registerUser(server);
    const res = await get(`/users?query=${encodeURIComponent(member.email)}`);
    expect(res.body.users).toHaveLength(1);
    const listed = res.body.users[0];
    expect(listed).toMatchObject({ id: member.id, email: member.email, banned: false, banReason: null, bannedUntil: null, roles: ["user"] });
    expect(listed.lastSignInAt).toEqual(expect.any(String));
    expect(listed.updatedAt).toEqual(expect.any(String));
    expect(JSON.stringify(res.body)).not.toContain("argon2");
    expect(Object.keys(listed).sort()).toEqual(
      ["id", "email", "emailVerified", "username", "firstName", "lastName", "image", "roles", "isAnonymous", "mfaEnabled", "createdAt", "banned", "banReason", "bannedUntil", "lastSignInAt", "updatedAt"].sort(),
    );
  });

  test("query is a case-insensitive substring of email, username, first or last name; wildcards are letters", async () => {
    const tag = `q${crypto.randomUUID().slice(0, 8)}`;
    const byEmail = await server.ctx.users.create({ email: `${tag}-mail@example.com` });
    const byUsername = await server.ctx.users.create({ email: uniqueEmail(), username: `${tag}_User` });
    const byFirst = await server.ctx.users.create({ email: uniqueEmail(), firstName: `Ada${tag.toUpperCase()}` });
    const byLast = await server.ctx.users.create({ email: uniqueEmail(), lastName: `von ${tag}` });
    const ids = (res: { body: { users: Array<{ id: string }> } }) => res.body.users.map((u) => u.id).sort();
    expect(ids(await get(`/users?query=${tag.toUpperCase()}`))).toEqual([byEmail.id, byUsername.id, byFirst.id, byLast.id].sort());
    expect(ids(await get(`/users?query=${encodeURIComponent(`${tag}_user`)}`))).toEqual([byUsername.id]);
    expect(ids(await get(`/users?query=${encodeURIComponent(`${tag}%`)}`))).toEqual([]);
    expect(ids(await get(`/users?query=${encodeURIComponent(`  ${tag}-MAIL@ `)}`))).toEqual([byEmail.id]);
  });

  test("filters by role (admin lists both sources) and by banned state", async () => {
    const { tag, made } = await taggedUsers(3);
    const [plain, stored, settings] = made as [(typeof made)[0], (typeof made)[0], (typeof made)[0]];
    await server.ctx.users.update(stored.id, { roles: ["user", "admin"] });
    await server.ctx.users.update(settings.id, { email: SETTINGS_ADMIN, emailVerified: true });
    const ids = async (q: string) => (await get(`/users?query=${tag}&${q}`)).body.users.map((u: { id: string }) => u.id);
    expect(await ids("role=admin")).toEqual([settings.id, stored.id]);
    expect(await ids("role=user")).toEqual([settings.id, stored.id, plain.id]);
    expect(await ids("role=support")).toEqual([]);
    expect((await post(`/users/${plain.id}/ban`, { reason: "spam" })).status).toBe(200);
    expect(await ids("banned=true")).toEqual([plain.id]);
    expect(await ids("banned=false")).toEqual([settings.id, stored.id]);
    expect((await get("/users?banned=maybe")).status).toBe(400);
  });

  test("paging while users are created meanwhile: no duplicates, no gaps, newest first", async () => {
    const { tag, made } = await taggedUsers(30);
    let extra = 0;
    const seen = await pageThrough(`query=${tag}`, 7, async () => {
      await Promise.all([1, 2, 3].map(() => server.ctx.users.create({ email: uniqueEmail("late"), lastName: `${tag} late${extra++}` })));
    });
    const ids = seen.map((u) => u.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const user of made) expect(ids).toContain(user.id);
    // Users made after the first page sort before it, so none of them shows up in a later page.
    expect(ids.slice(0, 7)).toEqual(made.slice(-7).reverse().map((u) => u.id));
    expect(ids).toHaveLength(30);
    const times = seen.map((u) => Date.parse(u.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  test("users made in the same millisecond page without loss (the cursor keeps microseconds)", async () => {
    const tag = `Same${crypto.randomUUID().slice(0, 8)}`;
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: Bun.randomUUIDv7(), email: uniqueEmail("same"), lastName: `${tag} ${i}`, createdAt: new Date("2026-01-01T00:00:00.000Z") }));
    await server.ctx.db.insert(users).values(rows);
    const seen = await pageThrough(`query=${tag}`, 5);
    expect(seen.map((u) => u.id).sort()).toEqual(rows.map((r) => r.id).sort());
  });
});

describe("GET /auth/admin/users/:id", () => {
  test("the user with sessions (no `current`), accounts, passkeys and teams", async () => {
    const member = await registerUser(server);
    const team = await server.request("POST", "/auth/teams", { body: { name: "Crew" }, token: member.token });
    expect(team.status).toBe(201);
    const res = await get(`/users/${member.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: member.id, email: member.email, banned: false, accounts: [], passkeys: [] });
    expect(res.body.teams).toEqual([{ id: team.body.id, name: "Crew", role: "owner" }]);
    expect(res.body.sessions).toHaveLength(1);
    expect(Object.keys(res.body.sessions[0]).sort()).toEqual(["createdAt", "id", "ip", "lastUsedAt", "userAgent"]);
  });

  test("unknown or malformed id: 404", async () => {
    expect((await get(`/users/${Bun.randomUUIDv7()}`)).status).toBe(404);
    expect((await get("/users/not-an-id")).status).toBe(404);
  });
});

describe("POST /auth/admin/users", () => {
  test("with a password: 201 AdminUser, the user signs in with it; audited with adminId", async () => {
    const email = uniqueEmail("made");
    const res = await post("/users", { email: ` ${email.toUpperCase()} `, password: PASSWORD, firstName: "Grace", roles: ["user", "support"], emailVerified: true });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ email, firstName: "Grace", roles: ["user", "support"], emailVerified: true, banned: false, lastSignInAt: null });
    expect((await login(email)).status).toBe(200);
    const audit = await get(`/audit?userId=${res.body.id}&type=admin_user_created`);
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0].data.adminId).toBe(admin.user.id);
  });

  test("without a password: a set-password mail whose link is a reset link living 7 days", async () => {
    const email = uniqueEmail("invitee");
    const res = await post("/users", { email });
    expect(res.status).toBe(201);
    const mail = await server.mailTo(email, /token=/);
    const link = /(https:\/\/\S+\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1] ?? "";
    expect(link.startsWith(`${APP_URL}/reset-password?token=`)).toBe(true);
    expect(mail.text).toContain("7 days");
    const [row] = await server.ctx.db.select().from(passwordResetTokens).where(eq(passwordResetTokens.userId, res.body.id));
    expect((row?.expiresAt.getTime() ?? 0) - (row?.createdAt.getTime() ?? 0)).toBe(7 * 86_400_000);
    const token = new URL(link).searchParams.get("token");
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: PASSWORD } })).status).toBe(204);
    expect((await login(email)).status).toBe(200);
  });

  test("taken email 409 EMAIL_TAKEN, weak password 400 WEAK_PASSWORD, bad fields 400 with details; form bodies work", async () => {
    const member = await registerUser(server);
    expect((await post("/users", { email: member.email, password: PASSWORD })).body.code).toBe("EMAIL_TAKEN");
    expect((await post("/users", { email: uniqueEmail(), password: "short" })).body.code).toBe("WEAK_PASSWORD");
    const bad = await post("/users", { email: uniqueEmail(), roles: ["Not A Role"] });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].path).toContain("roles");
    const email = uniqueEmail("form");
    const form = await server.request("POST", "/auth/admin/users", { form: { email, password: PASSWORD, emailVerified: "true", roles: "support" }, token: admin.token });
    expect(form.status).toBe(201);
    expect(form.body).toMatchObject({ email, emailVerified: true, roles: ["support"] });
  });
});

describe("PATCH /auth/admin/users/:id", () => {
  test("profile fields change; sessions live on", async () => {
    const member = await registerUser(server);
    const res = await patch(`/users/${member.id}`, { firstName: "Ada", lastName: "Lovelace", username: `ada${crypto.randomUUID().slice(0, 6)}` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ firstName: "Ada", lastName: "Lovelace" });
    expect((await me(member.token)).status).toBe(200);
    const audit = await get(`/audit?userId=${member.id}&type=admin_user_updated`);
    expect(audit.body.events[0].data).toMatchObject({ adminId: admin.user.id });
  });

  test("a change of roles ends every session at once; the new token carries the new roles", async () => {
    const member = await registerUser(server);
    const res = await patch(`/users/${member.id}`, { roles: ["user", "support"] });
    expect(res.status).toBe(200);
    expect(res.body.roles).toEqual(["user", "support"]);
    expect((await me(member.token)).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: member.refreshToken } })).status).toBe(401);
    const again = await login(member.email);
    expect(claimsOf(again.body.accessToken).roles).toEqual(["user", "support"]);
  });

  test("a change of email ends every session and spends the old address's reset links", async () => {
    const member = await registerUser(server);
    await server.request("POST", "/auth/password/forgot", { body: { email: member.email } });
    const mail = await server.mailTo(member.email, /token=/);
    const resetToken = /token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    const email = uniqueEmail("moved");
    const res = await patch(`/users/${member.id}`, { email });
    expect(res.body).toMatchObject({ email, emailVerified: false });
    expect((await me(member.token)).status).toBe(401);
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token: resetToken } })).body.valid).toBe(false);
    expect((await login(email)).status).toBe(200);
    const taken = await patch(`/users/${member.id}`, { email: admin.user.email });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("EMAIL_TAKEN");
  });

  test("the admin role given by ADMIN_EMAILS cannot be removed here: 409 ADMIN_FROM_SETTINGS", async () => {
    const existing = await server.ctx.users.findByEmail(SETTINGS_ADMIN);
    const settingsAdmin = existing ?? (await server.ctx.users.create({ email: SETTINGS_ADMIN, emailVerified: true }));
    const res = await patch(`/users/${settingsAdmin.id}`, { roles: ["user"] });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("ADMIN_FROM_SETTINGS");
    const moved = await patch(`/users/${settingsAdmin.id}`, { email: uniqueEmail("escape") });
    expect(moved.body.code).toBe("ADMIN_FROM_SETTINGS");
  });
});

describe("guard rails on oneself", () => {
  test("with another admin around: banning, deleting or de-admining oneself is 400 VALIDATION_ERROR", async () => {
    const self = await newAdmin(server);
    for (const res of [
      await post(`/users/${self.user.id}/ban`, {}, self.token),
      await del(`/users/${self.user.id}`, self.token),
      await patch(`/users/${self.user.id}`, { roles: ["user"] }, self.token),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
    expect((await me(self.token)).status).toBe(200);
  });

  test("the last admin: 409 LAST_ADMIN for each, and nothing changes", async () => {
    const iso = await isolatedDatabase();
    const alone = await createTestServer({}, { database: iso.database });
    try {
      const only = await newAdmin(alone);
      const call = (method: string, path: string, body?: unknown) => alone.request(method, `/auth/admin${path}`, { body, token: only.token });
      for (const res of [
        await call("POST", `/users/${only.user.id}/ban`, {}),
        await call("DELETE", `/users/${only.user.id}`),
        await call("PATCH", `/users/${only.user.id}`, { roles: ["user"] }),
      ]) {
        expect(res.status).toBe(409);
        expect(res.body.code).toBe("LAST_ADMIN");
      }
      expect((await alone.request("GET", "/auth/me", { token: only.token })).body.roles).toContain("admin");
      // Keeping the role while changing others is no removal.
      expect((await call("PATCH", `/users/${only.user.id}`, { roles: ["admin", "user", "support"] })).status).toBe(200);
    } finally {
      await alone.close();
      await iso.drop();
    }
  }, 30_000);
});

describe("DELETE /auth/admin/users/:id and /sessions", () => {
  test("delete: 204 as DELETE /auth/me; tokens die, the email is free again; audited", async () => {
    const member = await registerUser(server);
    expect((await del(`/users/${member.id}`)).status).toBe(204);
    expect((await me(member.token)).status).toBe(401);
    expect(await server.ctx.users.findById(member.id)).toBeUndefined();
    expect((await del(`/users/${member.id}`)).status).toBe(404);
    const audit = await get(`/audit?userId=${member.id}&type=admin_user_deleted`);
    expect(audit.body.events[0].data.adminId).toBe(admin.user.id);
  });

  test("revoke sessions: 204; every session of the user dies at once, the user stays", async () => {
    const member = await registerUser(server);
    const second = await login(member.email);
    expect((await del(`/users/${member.id}/sessions`)).status).toBe(204);
    expect((await me(member.token)).status).toBe(401);
    expect((await me(second.body.accessToken)).status).toBe(401);
    expect((await login(member.email)).status).toBe(200);
    const audit = await get(`/audit?userId=${member.id}&type=admin_sessions_revoked`);
    expect(audit.body.events[0].data).toMatchObject({ adminId: admin.user.id, count: 2 });
  });
});

describe("POST /auth/admin/users/:id/mfa/reset", () => {
  test("TOTP and recovery codes go, MFA is off, the user is mailed; sign-in needs no second step", async () => {
    const member = await registerUser(server);
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: member.token });
    const code = new TOTP({ secret: Secret.fromBase32(setup.body.secret), digits: 6, period: 30 }).generate({ timestamp: clock.now().getTime() });
    expect((await server.request("POST", "/auth/mfa/totp/confirm", { body: { code }, token: member.token })).status).toBe(200);
    expect((await login(member.email)).body.mfaRequired).toBe(true);
    const sent = server.mailer.outbox.length;
    expect((await post(`/users/${member.id}/mfa/reset`)).status).toBe(204);
    expect((await server.ctx.users.findById(member.id))?.mfaEnabled).toBe(false);
    expect(await server.ctx.db.select().from(totpSecrets).where(eq(totpSecrets.userId, member.id))).toHaveLength(0);
    expect(await server.ctx.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, member.id))).toHaveLength(0);
    expect((await server.mailTo(member.email, /administrator turned off two-factor/, sent)).to).toBe(member.email);
    expect((await login(member.email)).body.accessToken).toEqual(expect.any(String));
    expect((await get(`/audit?userId=${member.id}&type=admin_mfa_reset`)).body.events[0].data.adminId).toBe(admin.user.id);
  });
});

describe("ban and unban", () => {
  test("ban: 200 AdminUser; sessions die; password sign-in 403 USER_BANNED (a wrong password still 401); refresh 401", async () => {
    const member = await registerUser(server);
    const res = await post(`/users/${member.id}/ban`, { reason: "abuse" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ banned: true, banReason: "abuse", bannedUntil: null });
    expect((await me(member.token)).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: member.refreshToken } })).status).toBe(401);
    const refused = await login(member.email);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe("USER_BANNED");
    expect((await login(member.email, "not the password at all")).status).toBe(401);
    const audit = await get(`/audit?userId=${member.id}&type=admin_user_banned`);
    expect(audit.body.events[0].data).toMatchObject({ adminId: admin.user.id, reason: "abuse", until: null });
  });

  test("code sign-in: a code request mails nothing (202), a code issued before the ban answers 403", async () => {
    const member = await registerUser(server);
    expect((await server.request("POST", "/auth/code/request", { body: { email: member.email } })).status).toBe(202);
    const mail = await server.mailTo(member.email, /\d{6}/);
    const code = /(\d{6})/.exec(mail.text)?.[1];
    await post(`/users/${member.id}/ban`, {});
    const sent = server.mailer.outbox.length;
    expect((await server.request("POST", "/auth/code/request", { body: { email: member.email } })).status).toBe(202);
    expect((await server.request("POST", "/auth/password/forgot", { body: { email: member.email } })).status).toBe(202);
    const verify = await server.request("POST", "/auth/code/verify", { body: { email: member.email, code } });
    expect(verify.status).toBe(403);
    expect(verify.body.code).toBe("USER_BANNED");
    await Bun.sleep(100);
    expect(server.mailer.outbox.slice(sent).filter((m) => m.to === member.email)).toHaveLength(0);
  });

  test("MFA verify: a challenge issued before the ban answers 403 USER_BANNED", async () => {
    const member = await registerUser(server);
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: member.token });
    const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret), digits: 6, period: 30 });
    expect((await server.request("POST", "/auth/mfa/totp/confirm", { body: { code: totp.generate({ timestamp: clock.now().getTime() }) }, token: member.token })).status).toBe(200);
    const challenge = await login(member.email);
    expect(challenge.body.mfaRequired).toBe(true);
    await post(`/users/${member.id}/ban`, {});
    clock.advance(30);
    const res = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.body.mfaToken, code: totp.generate({ timestamp: clock.now().getTime() }) } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("USER_BANNED");
  });

  test("invitation: accepting one sent to a banned account answers 403 USER_BANNED", async () => {
    const owner = await registerUser(server);
    const member = await registerUser(server);
    const team = await server.request("POST", "/auth/teams", { body: { name: "T" }, token: owner.token });
    expect((await server.request("POST", "/auth/invitations", { body: { email: member.email, teamId: team.body.id }, token: owner.token })).status).toBe(201);
    const token = /token=([A-Za-z0-9_-]+)/.exec((await server.mailTo(member.email, /token=/)).text)?.[1] ?? "";
    await post(`/users/${member.id}/ban`, {});
    const res = await server.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("USER_BANNED");
    expect((await server.request("POST", "/auth/invitations/accept", { body: { token }, token: member.token })).status).toBe(401);
  });

  test("a ban with an end lifts by itself: after it, sign-in works and banned is false with null reason and end", async () => {
    const member = await registerUser(server);
    const until = new Date(clock.now().getTime() + 3600_000).toISOString();
    const res = await post(`/users/${member.id}/ban`, { reason: "cool off", until });
    expect(res.body).toMatchObject({ banned: true, banReason: "cool off", bannedUntil: until });
    expect((await login(member.email)).status).toBe(403);
    clock.advance(3601);
    await renewAdminToken();
    expect((await login(member.email)).status).toBe(200);
    expect((await get(`/users/${member.id}`)).body).toMatchObject({ banned: false, banReason: null, bannedUntil: null });
    const tag = encodeURIComponent(member.email);
    expect((await get(`/users?query=${tag}&banned=true`)).body.users).toHaveLength(0);
    expect((await get(`/users?query=${tag}&banned=false`)).body.users).toHaveLength(1);
  });

  test("until must be a date in the future: 400 with details", async () => {
    const member = await registerUser(server);
    for (const until of ["yesterday", new Date(clock.now().getTime() - 1000).toISOString()]) {
      const res = await post(`/users/${member.id}/ban`, { until });
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe("until");
    }
    expect((await me(member.token)).status).toBe(200);
  });

  test("unban: 200 with banned false, reason and end null; sign-in works again; audited", async () => {
    const member = await registerUser(server);
    await post(`/users/${member.id}/ban`, { reason: "x", until: new Date(clock.now().getTime() + 86_400_000).toISOString() });
    const res = await post(`/users/${member.id}/unban`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ banned: false, banReason: null, bannedUntil: null });
    expect((await login(member.email)).status).toBe(200);
    expect((await get(`/audit?userId=${member.id}&type=admin_user_unbanned`)).body.events[0].data.adminId).toBe(admin.user.id);
  });

  test("a body-less ban is a ban forever (JSON, form or none)", async () => {
    const member = await registerUser(server);
    const res = await server.request("POST", `/auth/admin/users/${member.id}/ban`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ banned: true, bannedUntil: null, banReason: null });
    const other = await registerUser(server);
    const form = await server.request("POST", `/auth/admin/users/${other.id}/ban`, { form: { reason: "form" }, token: admin.token });
    expect(form.body).toMatchObject({ banned: true, banReason: "form" });
  });
});

describe("POST /auth/admin/users/:id/impersonate", () => {
  test("a TokenResponse with no refreshToken; act names the admin; the token works as the user", async () => {
    const member = await registerUser(server);
    const res = await post(`/users/${member.id}/impersonate`);
    expect(res.status).toBe(200);
    expect(res.body.refreshToken).toBeUndefined();
    expect(res.body).toMatchObject({ tokenType: "Bearer", expiresIn: 1800, user: { id: member.id } });
    const claims = claimsOf(res.body.accessToken);
    expect(claims.act).toEqual({ sub: admin.user.id });
    expect(claims.sub).toBe(member.id);
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(1800);
    expect((await me(res.body.accessToken)).body.id).toBe(member.id);
  });

  test("audited on both users, and visible in the target's own activity", async () => {
    const member = await registerUser(server);
    await post(`/users/${member.id}/impersonate`);
    const onTarget = await get(`/audit?userId=${member.id}&type=admin_impersonation`);
    expect(onTarget.body.events[0].data.adminId).toBe(admin.user.id);
    const onAdmin = await get(`/audit?userId=${admin.user.id}&type=admin_impersonation`);
    expect(onAdmin.body.events.some((e: { data: { targetId: string } }) => e.data.targetId === member.id)).toBe(true);
    const activity = await server.request("GET", "/auth/me/activity", { token: member.token });
    expect(activity.body.events.map((e: { type: string }) => e.type)).toContain("admin_impersonation");
  });

  test("another admin, by either source, cannot be impersonated: 403 FORBIDDEN; unknown user 404", async () => {
    const other = await newAdmin(server);
    const res = await post(`/users/${other.user.id}/impersonate`);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("FORBIDDEN");
    const bySettings = (await server.ctx.users.findByEmail(SETTINGS_ADMIN)) ?? (await server.ctx.users.create({ email: SETTINGS_ADMIN, emailVerified: true }));
    expect((await post(`/users/${bySettings.id}/impersonate`)).status).toBe(403);
    expect((await post(`/users/${Bun.randomUUIDv7()}/impersonate`)).status).toBe(404);
  });

  test("ending the user's sessions ends the impersonation too", async () => {
    const member = await registerUser(server);
    const imp = await post(`/users/${member.id}/impersonate`);
    await del(`/users/${member.id}/sessions`);
    expect((await me(imp.body.accessToken)).status).toBe(401);
  });

  test("IMPERSONATION_TTL_S sets the lifetime; a wrong value stops the server naming it", async () => {
    const short = await createTestServer({ IMPERSONATION_TTL_S: "120" });
    try {
      const boss = await newAdmin(short);
      const { user } = await createSignedInUser(short);
      const res = await short.request("POST", `/auth/admin/users/${user.id}/impersonate`, { token: boss.token });
      const claims = claimsOf(res.body.accessToken);
      expect((claims.exp as number) - (claims.iat as number)).toBe(120);
      expect(res.body.expiresIn).toBe(120);
    } finally {
      await short.close();
    }
    await expect(createTestServer({ IMPERSONATION_TTL_S: "soon" })).rejects.toThrow("IMPERSONATION_TTL_S");
  }, 30_000);
});

describe("GET /auth/admin/audit", () => {
  test("filters by userId and type, newest first, cursor paging, nextCursor null on the last page", async () => {
    const member = await registerUser(server);
    for (let i = 0; i < 5; i++) await patch(`/users/${member.id}`, { firstName: `N${i}` });
    const first = await get(`/audit?userId=${member.id}&type=admin_user_updated&limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.events).toHaveLength(2);
    const all = [...first.body.events];
    let cursor = first.body.nextCursor;
    while (cursor) {
      const next = await get(`/audit?userId=${member.id}&type=admin_user_updated&limit=2&cursor=${cursor}`);
      all.push(...next.body.events);
      cursor = next.body.nextCursor;
    }
    expect(all).toHaveLength(5);
    const ids = all.map((e) => e.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(all.every((e) => e.userId === member.id && e.type === "admin_user_updated")).toBe(true);
    expect(Object.keys(all[0]).sort()).toEqual(["createdAt", "data", "id", "ip", "type", "userAgent", "userId"]);
    const withSignUp = await get(`/audit?userId=${member.id}`);
    expect(withSignUp.body.events.map((e: { type: string }) => e.type)).toContain("sign_in");
    expect((await get("/audit?userId=nope")).status).toBe(400);
    expect((await get("/audit?cursor=abc")).status).toBe(400);
    expect((await get("/audit?limit=101")).status).toBe(400);
  });

  test("every admin action is an event on the target naming the admin", async () => {
    const member = await registerUser(server);
    await patch(`/users/${member.id}`, { firstName: "A" });
    await post(`/users/${member.id}/impersonate`);
    await post(`/users/${member.id}/mfa/reset`);
    await del(`/users/${member.id}/sessions`);
    await post(`/users/${member.id}/ban`, {});
    await post(`/users/${member.id}/unban`);
    await del(`/users/${member.id}`);
    const rows = await server.ctx.db.select().from(auditEvents).where(and(eq(auditEvents.userId, member.id)));
    const adminRows = rows.filter((r) => r.type.startsWith("admin_"));
    expect(adminRows.map((r) => r.type).sort()).toEqual(
      ["admin_impersonation", "admin_mfa_reset", "admin_sessions_revoked", "admin_user_banned", "admin_user_deleted", "admin_user_unbanned", "admin_user_updated"].sort(),
    );
    expect(adminRows.every((r) => (r.data as { adminId?: string }).adminId === admin.user.id)).toBe(true);
  });
});

describe("the plugin and the CLI's service", () => {
  test("admin is in the default AUTH_PLUGINS; without it the routes are 404", async () => {
    const without = await createTestServer({ AUTH_PLUGINS: "password" });
    try {
      const boss = await newAdmin(without);
      expect((await without.request("GET", "/auth/admin/users", { token: boss.token })).status).toBe(404);
    } finally {
      await without.close();
    }
    expect(server.ctx.config.AUTH_PLUGINS).toContain("admin");
  });

  test("with mfa, oauth, teams and password off it still works: nothing of theirs is shown, an MFA reset just turns MFA off, and nobody is mailed a password link", async () => {
    const alone = await createTestServer({ AUTH_PLUGINS: "magic-code,admin" });
    try {
      const boss = await newAdmin(alone);
      const { user: member } = await createSignedInUser(alone, { mfaEnabled: true });
      const detail = await alone.request("GET", `/auth/admin/users/${member.id}`, { token: boss.token });
      expect(detail.status).toBe(200);
      expect(detail.body).toMatchObject({ id: member.id, accounts: [], passkeys: [], teams: [] });
      expect((await alone.request("POST", `/auth/admin/users/${member.id}/mfa/reset`, { token: boss.token })).status).toBe(204);
      const [after] = await alone.ctx.db.select().from(users).where(eq(users.id, member.id));
      expect(after?.mfaEnabled).toBe(false);
      const email = uniqueEmail("no-password-plugin");
      const made = await alone.request("POST", "/auth/admin/users", { token: boss.token, body: { email } });
      expect(made.status).toBe(201);
      const links = await alone.ctx.db.select().from(passwordResetTokens).where(eq(passwordResetTokens.userId, made.body.id));
      expect(links).toEqual([]);
      expect(alone.mailer.outbox.filter((m) => m.to === email)).toEqual([]);
    } finally {
      await alone.close();
    }
  });

  test("grantAdmin makes an existing user an admin (their sessions end) or a new one with a set-password mail", async () => {
    const member = await registerUser(server);
    const granted = await grantAdmin(server.ctx, member.email);
    expect(granted).toMatchObject({ created: false, user: { roles: ["user", "admin"] } });
    expect((await me(member.token)).status).toBe(401);
    const email = uniqueEmail("first-admin");
    const made = await grantAdmin(server.ctx, email);
    expect(made.created).toBe(true);
    expect(made.user.roles).toContain("admin");
    expect((await server.mailTo(email, /token=/)).text).toContain("7 days");
  });
});

describe("OpenAPI", () => {
  test("every admin route is in /docs/json with a summary, a description and the admin tag", async () => {
    const spec = (await server.request("GET", "/docs/json")).body;
    const expected: Array<[string, string]> = [
      ["/auth/admin/users", "get"],
      ["/auth/admin/users", "post"],
      ["/auth/admin/users/{id}", "get"],
      ["/auth/admin/users/{id}", "patch"],
      ["/auth/admin/users/{id}", "delete"],
      ["/auth/admin/users/{id}/ban", "post"],
      ["/auth/admin/users/{id}/unban", "post"],
      ["/auth/admin/users/{id}/sessions", "delete"],
      ["/auth/admin/users/{id}/mfa/reset", "post"],
      ["/auth/admin/users/{id}/impersonate", "post"],
      ["/auth/admin/audit", "get"],
    ];
    for (const [path, method] of expected) {
      const operation = spec.paths?.[path]?.[method];
      expect({ path, method, summary: typeof operation?.summary, description: typeof operation?.description }).toEqual({ path, method, summary: "string", description: "string" });
      expect(operation.tags).toContain("admin");
    }
    expect(JSON.stringify(spec.paths["/auth/admin/users"].post.requestBody)).toContain("emailVerified");
  });
});
