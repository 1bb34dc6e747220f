import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { count, eq } from "drizzle-orm";
import { newId } from "../src/crypto";
import { auditEvents, sessions } from "../src/db/schema";
import { invitations } from "../plugins/invitations/schema";
import { passwordResetTokens } from "../plugins/password/schema";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 18: retention in the maintenance job (AUDIT_RETENTION_DAYS, default 365; ended sessions, spent reset links,
// expired invitations), safe on every instance at once.

const PASSWORD = "correct horse battery staple";
const DAY_MS = 86_400_000;
let offsetMs = 0;
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({}, { clock: { now: () => new Date(Date.now() + offsetMs) } });
});
afterAll(async () => {
  await server.close();
});

const rowsOf = async (userId: string) => {
  const db = server.ctx.db;
  const [s] = await db.select({ n: count() }).from(sessions).where(eq(sessions.userId, userId));
  const [a] = await db.select({ n: count() }).from(auditEvents).where(eq(auditEvents.userId, userId));
  const [r] = await db.select({ n: count() }).from(passwordResetTokens).where(eq(passwordResetTokens.userId, userId));
  const [i] = await db.select({ n: count() }).from(invitations).where(eq(invitations.invitedBy, userId));
  return { sessions: s?.n, audit: a?.n, resetTokens: r?.n, invitations: i?.n };
};

/** Every task twice at once, as two instances' maintenance jobs would run them. */
const maintain = () => Promise.all([...server.ctx.hooks.maintenance, ...server.ctx.hooks.maintenance].map((task) => task()));

describe("retention", () => {
  test("keeps what is live; past their time, ended sessions, spent links, expired invitations and old audit rows go", async () => {
    const email = uniqueEmail("retention");
    const registered = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(registered.status).toBe(201);
    const userId = registered.body.user.id as string;
    const other = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect((await server.request("POST", "/auth/logout", { token: other.body.accessToken })).status).toBe(204);
    expect((await server.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
    await server.mailTo(email, /token=/);
    const now = server.ctx.clock.now();
    await server.ctx.db.insert(invitations).values({
      id: newId(),
      email: uniqueEmail("invitee"),
      role: "member",
      tokenHash: newId(),
      invitedBy: userId,
      createdAt: now,
      expiresAt: new Date(now.getTime() + 7 * DAY_MS),
    });

    await maintain();
    // Nothing has ended long enough ago: the revoked session stays its day of grace, the link and invitation are live.
    expect(await rowsOf(userId)).toMatchObject({ sessions: 2, resetTokens: 1, invitations: 1 });
    expect((await rowsOf(userId)).audit).toBeGreaterThan(0);

    offsetMs = 2 * DAY_MS;
    await maintain();
    const afterTwoDays = await rowsOf(userId);
    expect(afterTwoDays).toMatchObject({ sessions: 1, resetTokens: 0, invitations: 1 });
    expect(afterTwoDays.audit).toBeGreaterThan(0);
    expect((await server.request("GET", "/auth/me", { token: registered.body.accessToken })).status).toBe(401);

    offsetMs = 366 * DAY_MS;
    await maintain();
    expect(await rowsOf(userId)).toEqual({ sessions: 0, audit: 0, resetTokens: 0, invitations: 0 });
    // The account itself stays: retention ends what has ended, never a user.
    const fresh = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(fresh.status).toBe(200);
    await maintain();
    expect((await rowsOf(userId)).sessions).toBe(1);
    offsetMs = 0;
  });

  test("AUDIT_RETENTION_DAYS is a setting: 0 keeps audit rows forever", async () => {
    expect(server.ctx.config.AUDIT_RETENTION_DAYS).toBe(365);
    const keeping = await createTestServer({ AUDIT_RETENTION_DAYS: 0 });
    try {
      expect(keeping.ctx.config.AUDIT_RETENTION_DAYS).toBe(0);
    } finally {
      await keeping.close();
    }
  });
});
