import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq, inArray } from "drizzle-orm";
import { newId, sha256 } from "../src/crypto";
import { auditEvents, sessions } from "../src/db/schema";
import { invitations } from "../plugins/invitations/schema";
import { passwordResetTokens } from "../plugins/password/schema";
import { type AuthServer, buildAuthServer } from "../src/server";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 18: retention in the maintenance job (AUDIT_RETENTION_DAYS, default 365, 0 keeps; sessions expired, idle or
// revoked a day ago; spent or expired reset links; expired or revoked invitations), safe on every instance at once.
// The clock is the real one and only this test's rows are dated back: the Postgres pass shares its database.

const PASSWORD = "correct horse battery staple";
const DAY_MS = 86_400_000;
let server: TestServer;
/** A second instance on the same database and store, one that keeps its audit rows for ever. */
let keeper: AuthServer;

beforeAll(async () => {
  server = await createTestServer();
  keeper = await buildAuthServer({ LOG_LEVEL: "silent", AUDIT_RETENTION_DAYS: 0 }, { database: server.ctx.database, kv: server.ctx.kv, mailer: server.mailer });
});
afterAll(async () => {
  await keeper.close();
  await server.close();
});

/** Every maintenance task of the given instances, each twice, all at once: as instances' jobs may overlap. */
const maintain = (...instances: AuthServer[]) =>
  Promise.all(instances.flatMap((i) => [...i.ctx.hooks.maintenance, ...i.ctx.hooks.maintenance]).map((task) => task()));

const ago = (ms: number) => new Date(Date.now() - ms);
const ids = async (table: typeof sessions | typeof passwordResetTokens | typeof invitations, wanted: string[]) =>
  (await server.ctx.db.select({ id: table.id }).from(table).where(inArray(table.id, wanted))).map((r) => r.id).sort();

async function signIn(email: string) {
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { accessToken: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
}

const sessionIdOf = async (userId: string, exclude: string[]) => {
  const rows = await server.ctx.db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, userId));
  const fresh = rows.map((r) => r.id).filter((id) => !exclude.includes(id));
  expect(fresh).toHaveLength(1);
  return fresh[0] as string;
};

describe("retention", () => {
  test("ended sessions, spent or expired links and invitations go a day after they end; what is live or just ended stays", async () => {
    const email = uniqueEmail("retention");
    const registered = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(registered.status).toBe(201);
    const userId = registered.body.user.id as string;
    const live = await sessionIdOf(userId, []);
    const made = [live];
    const session = async () => {
      const signedIn = await signIn(email);
      const id = await sessionIdOf(userId, made);
      made.push(id);
      return { ...signedIn, id };
    };
    const justLoggedOut = await session();
    expect((await server.request("POST", "/auth/logout", { token: justLoggedOut.accessToken })).status).toBe(204);
    const loggedOut = await session();
    expect((await server.request("POST", "/auth/logout", { token: loggedOut.accessToken })).status).toBe(204);
    const idle = await session();
    const expired = await session();
    const db = server.ctx.db;
    await db.update(sessions).set({ revokedAt: ago(2 * DAY_MS) }).where(eq(sessions.id, loggedOut.id));
    const idleFor = server.ctx.config.SESSION_IDLE_TIMEOUT_S * 1000 + 2 * DAY_MS;
    await db.update(sessions).set({ lastUsedAt: ago(idleFor), createdAt: ago(idleFor) }).where(eq(sessions.id, idle.id));
    await db.update(sessions).set({ expiresAt: ago(2 * DAY_MS) }).where(eq(sessions.id, expired.id));

    // A real reset link, spent two days ago, and rows at each side of the day of grace.
    expect((await server.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
    const link = (await server.mailTo(email, /token=/)).text.match(/token=([A-Za-z0-9_-]+)/)?.[1] as string;
    const [spent] = await db.select({ id: passwordResetTokens.id }).from(passwordResetTokens).where(eq(passwordResetTokens.tokenHash, sha256(link)));
    expect(spent).toBeDefined();
    await db.update(passwordResetTokens).set({ usedAt: ago(2 * DAY_MS) }).where(eq(passwordResetTokens.id, spent?.id as string));
    const resetRow = (over: Partial<typeof passwordResetTokens.$inferInsert>) => ({
      id: newId(),
      userId,
      tokenHash: sha256(newId()),
      createdAt: ago(3 * DAY_MS),
      expiresAt: new Date(Date.now() + 3_600_000),
      ...over,
    });
    const resets = {
      live: resetRow({ createdAt: new Date() }),
      justSpent: resetRow({ usedAt: ago(60_000) }),
      expired: resetRow({ expiresAt: ago(2 * DAY_MS) }),
    };
    await db.insert(passwordResetTokens).values(Object.values(resets));
    const invitationRow = (over: Partial<typeof invitations.$inferInsert>) => ({
      id: newId(),
      email: uniqueEmail("invitee"),
      role: "member",
      tokenHash: sha256(newId()),
      invitedBy: userId,
      createdAt: ago(9 * DAY_MS),
      expiresAt: new Date(Date.now() + 7 * DAY_MS),
      ...over,
    });
    const invites = {
      pending: invitationRow({}),
      justRevoked: invitationRow({ revokedAt: ago(60_000) }),
      acceptedLongAgo: invitationRow({ acceptedAt: ago(8 * DAY_MS), expiresAt: ago(2 * DAY_MS) }),
      revoked: invitationRow({ revokedAt: ago(2 * DAY_MS) }),
      expired: invitationRow({ expiresAt: ago(2 * DAY_MS) }),
    };
    await db.insert(invitations).values(Object.values(invites));

    // What a client is told about what ended, before and after it is deleted: the same.
    const lateAnswers = async () => {
      const reset = await server.request("POST", "/auth/password/reset", { body: { token: link, newPassword: "another horse battery staple" } });
      const refresh = await server.request("POST", "/auth/refresh", { body: { refreshToken: loggedOut.refreshToken } });
      return { reset: [reset.status, reset.body.code], refresh: [refresh.status, refresh.body.code] };
    };
    const before = await lateAnswers();
    expect(before.reset).toEqual([400, "INVALID_RESET_TOKEN"]);
    expect(before.refresh[0]).toBe(401);

    await maintain(server, keeper);

    expect(await ids(sessions, made)).toEqual([live, justLoggedOut.id].sort());
    expect(await ids(passwordResetTokens, [spent?.id as string, ...Object.values(resets).map((r) => r.id)])).toEqual([resets.live.id, resets.justSpent.id].sort());
    expect(await ids(invitations, Object.values(invites).map((i) => i.id))).toEqual([invites.pending.id, invites.justRevoked.id, invites.acceptedLongAgo.id].sort());
    expect(await lateAnswers()).toEqual(before);
    // The live session still works; the account is never retention's to delete.
    expect((await server.request("GET", "/auth/me", { token: registered.body.accessToken })).status).toBe(200);
    expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(200);
  });

  test("audit rows older than AUDIT_RETENTION_DAYS (365) go; an instance with 0 keeps them; newer rows stay", async () => {
    expect(server.ctx.config.AUDIT_RETENTION_DAYS).toBe(365);
    const userId = newId();
    const row = (days: number) => ({ userId, type: "sign_in", createdAt: ago(days * DAY_MS) });
    await server.ctx.db.insert(auditEvents).values([row(366), row(364), row(0)]);
    const ages = async () =>
      (await server.ctx.db.select({ createdAt: auditEvents.createdAt }).from(auditEvents).where(eq(auditEvents.userId, userId)))
        .map((r) => Math.round((Date.now() - r.createdAt.getTime()) / DAY_MS))
        .sort((a, b) => a - b);

    await maintain(keeper);
    expect(await ages()).toEqual([0, 364, 366]);
    await maintain(server, keeper);
    expect(await ages()).toEqual([0, 364]);
  });
});
