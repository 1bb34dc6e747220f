import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { and, eq, inArray, sql } from "drizzle-orm";
import { auditEvents, sessions, users } from "../src/db/schema";
import { isolatedDatabase, newAdmin } from "./support/admin";
import { createTestServer, type TestResponse, type TestServer } from "./support/server";
import { createSignedInUser } from "./support/users";

// Rounds of racing requests on a loaded shared machine; Postgres rounds each make a pair of admins.
setDefaultTimeout(120_000);

const ROUNDS = 10;

/** The three admin actions that take the admin role away from their target, and what each answers when it is done. */
const ACTIONS = {
  demote: { method: "PATCH", path: (id: string) => `/users/${id}`, body: { roles: ["user"] }, ok: 200, audit: "admin_user_updated" },
  ban: { method: "POST", path: (id: string) => `/users/${id}/ban`, body: { reason: "race" }, ok: 200, audit: "admin_user_banned" },
  delete: { method: "DELETE", path: (id: string) => `/users/${id}`, body: undefined, ok: 204, audit: "admin_user_deleted" },
} as const;
type Action = keyof typeof ACTIONS;
type Admin = Awaited<ReturnType<typeof newAdmin>>;

let server: TestServer;
let drop: () => Promise<void>;

// A database of its own, and no ADMIN_EMAILS: every admin there is the two each round makes.
beforeAll(async () => {
  const iso = await isolatedDatabase();
  drop = iso.drop;
  server = await createTestServer({}, { database: iso.database });
}, 120_000);
afterAll(async () => {
  await server?.close();
  await drop?.();
});

const act = (action: Action, by: Admin, targetId: string) => {
  const { method, path, body } = ACTIONS[action];
  return server.request(method, `/auth/admin${path(targetId)}`, { body, token: by.token });
};

/** The only two admins: whoever a previous round left with the role loses it first, straight in the database. */
async function onlyTwoAdmins(): Promise<[Admin, Admin]> {
  await server.ctx.db.execute(sql`update users set roles = array_remove(roles, 'admin') where roles @> array['admin']`);
  return [await newAdmin(server), await newAdmin(server)];
}

/** Admins who can still act: holding the role, not banned. */
async function usableAdminIds(): Promise<string[]> {
  const rows = await server.ctx.db
    .select({ id: users.id })
    .from(users)
    .where(and(sql`${users.roles} @> array['admin']::text[]`, eq(users.banned, false)));
  return rows.map((r) => r.id);
}

async function auditedBy(adminId: string): Promise<string[]> {
  const types = Object.values(ACTIONS).map((a) => a.audit);
  const rows = await server.ctx.db
    .select({ type: auditEvents.type })
    .from(auditEvents)
    .where(and(inArray(auditEvents.type, types), sql`${auditEvents.data}->>'adminId' = ${adminId}`));
  return rows.map((r) => r.type);
}

/**
 * How a refused side of a race may answer. Most often both requests pass the admin check before either change commits,
 * and the later one, under the admin-set lock, finds its target the last admin: 409 LAST_ADMIN. When the first change
 * has committed before the second request is looked at, its caller is refused at the door instead: 401 once its session
 * is known to be ended (a role change, a ban and a deletion all end it; a deleted caller is 401 even before that), or
 * 403 FORBIDDEN when its role is already gone from the database but the revocation not yet heard.
 */
function expectRefused(res: TestResponse) {
  const allowed: Record<number, string[]> = { 409: ["LAST_ADMIN"], 401: ["SESSION_REVOKED"], 403: ["FORBIDDEN"] };
  expect(Object.keys(allowed)).toContain(String(res.status));
  expect(allowed[res.status]).toContain(res.body.code);
}

/** A and B, the only admins, act on each other at the same moment, ROUNDS times; one admin must be left each time. */
async function race(first: Action, second: Action) {
  for (let round = 0; round < ROUNDS; round++) {
    const [a, b] = await onlyTwoAdmins();
    // Each token is verified once beforehand: a first verification waits on WebCrypto, and on PGlite the
    // first request would then be done before the second one's token is checked, so nothing would race.
    for (const admin of [a, b]) expect((await server.request("GET", "/auth/admin/users?limit=1", { token: admin.token })).status).toBe(200);
    // Who is sent first alternates, so neither side wins by its place in the event loop alone.
    const [byA, byB] =
      round % 2 === 0
        ? await Promise.all([act(first, a, b.user.id), act(second, b, a.user.id)])
        : await Promise.all([act(second, b, a.user.id), act(first, a, b.user.id)]).then(([rb, ra]) => [ra, rb] as const);
    const aWon = byA.status === ACTIONS[first].ok;
    const bWon = byB.status === ACTIONS[second].ok;
    expect([aWon, bWon].filter(Boolean)).toHaveLength(1);
    const [winner, loser, refused] = aWon ? [a, b, byB] : [b, a, byA];
    expectRefused(refused);

    // The refused action did nothing: the winner is an admin still, signed in, unbanned, and nobody audits it.
    expect(await usableAdminIds()).toEqual([winner.user.id]);
    const [winnerSession] = await server.ctx.db.select({ revokedAt: sessions.revokedAt }).from(sessions).where(eq(sessions.userId, winner.user.id));
    expect(winnerSession?.revokedAt).toBeNull();
    expect(await auditedBy(loser.user.id)).toEqual([]);
    expect(await auditedBy(winner.user.id)).toEqual([ACTIONS[aWon ? first : second].audit]);

    const listed = await server.request("GET", "/auth/admin/users?role=admin&banned=false", { token: winner.token });
    expect(listed.status).toBe(200);
    expect(listed.body.users.map((u: { id: string }) => u.id)).toEqual([winner.user.id]);
  }
}

describe("two admins, the only two, act on each other at once: one admin is always left", () => {
  test("A removes B's admin role while B removes A's", () => race("demote", "demote"));
  test("A bans B while B bans A", () => race("ban", "ban"));
  test("A deletes B while B deletes A", () => race("delete", "delete"));
  test("A bans B while B removes A's admin role", () => race("ban", "demote"));
  test("A deletes B while B removes A's admin role", () => race("delete", "demote"));
  test("A deletes B while B bans A", () => race("delete", "ban"));
});

describe("three admins at once: no deadlock, no error, an admin left", () => {
  async function threeAdmins(): Promise<[Admin, Admin, Admin]> {
    const [a, b] = await onlyTwoAdmins();
    const c = await newAdmin(server);
    for (const admin of [a, b, c]) expect((await server.request("GET", "/auth/admin/users?limit=1", { token: admin.token })).status).toBe(200);
    return [a, b, c];
  }

  async function expectAnAdminLeft(answers: TestResponse[]) {
    for (const res of answers) expect([200, 204, 401, 403, 404, 409]).toContain(res.status);
    const left = await usableAdminIds();
    expect(left.length).toBeGreaterThanOrEqual(1);
    const [survivor] = await server.ctx.db.select().from(users).where(eq(users.id, left[0] as string));
    if (!survivor) throw new Error("no survivor");
    const token = (await server.ctx.sessions.create(survivor, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    expect((await server.request("GET", "/auth/admin/users?role=admin", { token })).status).toBe(200);
  }

  test("in a ring (A bans B, B deletes C, C removes A's role), and two on one target (A deletes C while B bans C)", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b, c] = await threeAdmins();
      await expectAnAdminLeft(await Promise.all([act("ban", a, b.user.id), act("delete", b, c.user.id), act("demote", c, a.user.id)]));
      const [d, e, f] = await threeAdmins();
      await expectAnAdminLeft(await Promise.all([act("delete", d, f.user.id), act("ban", e, f.user.id), act("demote", f, d.user.id)]));
    }
  });
});

describe("one after the other: once B is no admin, A is the last one", () => {
  async function expectLastAdmin(a: Admin) {
    for (const action of Object.keys(ACTIONS) as Action[]) {
      const res = await act(action, a, a.user.id);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe("LAST_ADMIN");
    }
    expect(await usableAdminIds()).toEqual([a.user.id]);
    expect((await server.request("GET", "/auth/admin/users?role=admin", { token: a.token })).status).toBe(200);
  }

  test("A removes B's role; B (old token: 401, new one: 403) cannot touch A, and A cannot step down: 409 LAST_ADMIN", async () => {
    const [a, b] = await onlyTwoAdmins();
    expect((await act("demote", a, b.user.id)).status).toBe(200);
    const fresh = await server.ctx.users.findById(b.user.id);
    if (!fresh) throw new Error("B is gone");
    const signedInAgain = (await server.ctx.sessions.create(fresh, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    for (const action of Object.keys(ACTIONS) as Action[]) {
      expect((await act(action, b, a.user.id)).status).toBe(401);
      const res = await act(action, { ...b, token: signedInAgain }, a.user.id);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
    await expectLastAdmin(a);
    expect(await auditedBy(b.user.id)).toEqual([]);
  });

  test("A bans B: a banned admin is no admin left behind, so A cannot step down either: 409 LAST_ADMIN", async () => {
    const [a, b] = await onlyTwoAdmins();
    expect((await act("ban", a, b.user.id)).status).toBe(200);
    await expectLastAdmin(a);
  });

  test("A deletes B: A cannot step down: 409 LAST_ADMIN", async () => {
    const [a, b] = await onlyTwoAdmins();
    expect((await act("delete", a, b.user.id)).status).toBe(204);
    await expectLastAdmin(a);
  });
});

describe("DELETE /auth/me of an admin", () => {
  test("the last admin who can act keeps the account: 409 LAST_ADMIN, nothing deleted; with another admin left, 204", async () => {
    const [a, b] = await onlyTwoAdmins();
    expect((await act("delete", a, b.user.id)).status).toBe(204);
    const refused = await server.request("DELETE", "/auth/me", { token: a.token });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("LAST_ADMIN");
    expect(await server.ctx.users.findById(a.user.id)).toBeDefined();
    expect((await server.request("GET", "/auth/me", { token: a.token })).status).toBe(200);

    const [c, d] = await onlyTwoAdmins();
    expect((await server.request("DELETE", "/auth/me", { token: c.token })).status).toBe(204);
    expect(await server.ctx.users.findById(c.user.id)).toBeUndefined();
    expect(await usableAdminIds()).toEqual([d.user.id]);
  });

  test("a user who is no admin deletes their account whatever the admins", async () => {
    await onlyTwoAdmins();
    const { tokens, user } = await createSignedInUser(server);
    expect((await server.request("DELETE", "/auth/me", { token: tokens.accessToken })).status).toBe(204);
    expect(await server.ctx.users.findById(user.id)).toBeUndefined();
  });
});
