import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { sweepStaleGuests } from "../plugins/anonymous/service";
import { sessions, users } from "../src/db/schema";
import { createTestServer, type TestServer } from "./support/server";
const DAY_MS = 24 * 60 * 60 * 1000;
/** The server's clock, set to any day relative to the real time. */
const clock = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ AUTH_PLUGINS: "anonymous", TRUST_PROXY: "true", RATE_LIMIT_ANONYMOUS_IP: "5/60" }, { clock });
}, 60_000);
afterAll(async () => {
  await server.close();
});

/** Each test signs up from its own address, so the per-IP limit of one test does not leak into another. */
const freshIp = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}, 10.0.0.${Math.floor(Math.random() * 250) + 1}`;
let ipCounter = 0;
/** Each in its own /64: per-IP limits count an IPv6 client by its /64 (API.md, Cross-cutting). */
const uniqueIp = () => `2001:db8:${(++ipCounter).toString(16)}::1`;

async function signUpGuest(ip = uniqueIp()) {
  const res = await server.request("POST", "/auth/anonymous", { headers: { "x-forwarded-for": ip } });
  expect(res.status).toBe(201);
  return res.body as { user: { id: string }; accessToken: string; refreshToken: string };
}

describe("POST /auth/anonymous", () => {
  test("201 TokenResponse for a guest with amr anon, without any body", async () => {
    const res = await server.request("POST", "/auth/anonymous", { headers: { "x-forwarded-for": uniqueIp() } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      user: {
        id: expect.any(String),
        email: null,
        emailVerified: false,
        username: null,
        firstName: null,
        lastName: null,
        image: null,
        roles: ["user"],
        isAnonymous: true,
        mfaEnabled: false,
        createdAt: expect.any(String),
      },
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      tokenType: "Bearer",
      expiresIn: 900,
      mfaEnabled: false,
    });
    expect(decodeJwt(res.body.accessToken)).toEqual(expect.objectContaining({ sub: res.body.user.id, amr: ["anon"] }));
    const me = await server.request("GET", "/auth/me", { token: res.body.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.isAnonymous).toBe(true);
  });

  test("works with an empty JSON object, an empty JSON body and an empty form; extra fields are ignored", async () => {
    const ip = uniqueIp();
    const headers = { "x-forwarded-for": ip };
    const bodies = [
      { body: {} },
      { body: "", headers: { ...headers, "content-type": "application/json" } },
      { form: {} },
      { body: { isAnonymous: false, roles: ["admin"], email: "sneaky@example.com" } },
    ];
    for (const opts of bodies) {
      const res = await server.request("POST", "/auth/anonymous", { headers, ...opts });
      expect(res.status).toBe(201);
      expect(res.body.user).toEqual(expect.objectContaining({ isAnonymous: true, email: null, roles: ["user"] }));
    }
  });

  test("each call makes a new guest", async () => {
    const ip = uniqueIp();
    const [a, b] = [await signUpGuest(ip), await signUpGuest(ip)];
    expect(a.user.id).not.toBe(b.user.id);
  });

  test("parallel sign-ups from one IP respect RATE_LIMIT_ANONYMOUS_IP; other IPs are unaffected", async () => {
    const ip = freshIp();
    const results = await Promise.all(
      Array.from({ length: 12 }, () => server.request("POST", "/auth/anonymous", { headers: { "x-forwarded-for": ip } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    const limited = results.filter((r) => r.status === 429);
    expect(limited).toHaveLength(7);
    for (const r of limited) {
      expect(r.body.code).toBe("RATE_LIMITED");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Only the first hop counts: a different proxy behind the same client is the same client.
    const sameClient = await server.request("POST", "/auth/anonymous", { headers: { "x-forwarded-for": `${ip.split(",")[0]}, 10.9.9.9` } });
    expect(sameClient.status).toBe(429);
    await signUpGuest();
  });

  test("the guest's session is listed, refreshes, and logs out like any other", async () => {
    const guest = await signUpGuest();
    const list = await server.request("GET", "/auth/sessions", { token: guest.accessToken });
    expect(list.body).toHaveLength(1);
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: guest.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.user).toEqual(expect.objectContaining({ id: guest.user.id, isAnonymous: true }));
  });
});

describe("sweep of unused guests", () => {
  // The database may be shared with other test files, so guests here are made in the past rather than the sweep run
  // in the future: a sweep at the real time deletes only guests older than ANONYMOUS_TTL_DAYS, which no one else makes.
  const ttlDays = () => server.ctx.config.ANONYMOUS_TTL_DAYS;
  const travelTo = (daysFromNow: number) => {
    clock.offsetMs = daysFromNow * DAY_MS;
  };

  async function exists(id: string) {
    return (await server.ctx.users.findById(id)) !== undefined;
  }

  test("deletes guests unused for ANONYMOUS_TTL_DAYS with their sessions; keeps refreshed guests, upgraded guests and users", async () => {
    travelTo(-ttlDays() - 20);
    const stale = await signUpGuest();
    const refreshedLater = await signUpGuest();
    const upgraded = await signUpGuest();
    const fullUser = await server.ctx.users.create({ email: `sweep-${crypto.randomUUID()}@example.com`, emailVerified: true });
    await server.ctx.users.update(fullUser.id, { createdAt: clock.now() });

    travelTo(-ttlDays() + 5);
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: refreshedLater.refreshToken } });
    expect(refreshed.status).toBe(200);
    await server.ctx.users.upgradeGuest(upgraded.user.id, { email: `upgraded-${crypto.randomUUID()}@example.com` });

    travelTo(0);
    await sweepStaleGuests(server.ctx);
    expect(await exists(stale.user.id)).toBe(false);
    expect(await server.ctx.db.select().from(sessions).where(eq(sessions.userId, stale.user.id))).toEqual([]);
    expect(await exists(refreshedLater.user.id)).toBe(true);
    expect(await exists(upgraded.user.id)).toBe(true);
    expect(await exists(fullUser.id)).toBe(true);

    travelTo(6);
    await sweepStaleGuests(server.ctx);
    expect(await exists(refreshedLater.user.id)).toBe(false);
    expect(await exists(upgraded.user.id)).toBe(true);
    travelTo(0);
  });

  test("works in batches until none is left, and overlapping sweeps delete each guest once", async () => {
    travelTo(0);
    const createdAt = new Date(Date.now() - (ttlDays() + 1) * DAY_MS);
    const ids = Array.from({ length: 25 }, () => crypto.randomUUID());
    await server.ctx.db.insert(users).values(ids.map((id) => ({ id, isAnonymous: true, createdAt })));
    const counts = await Promise.all([sweepStaleGuests(server.ctx, 4), sweepStaleGuests(server.ctx, 4), sweepStaleGuests(server.ctx, 4)]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(25);
    for (const id of ids) expect(await exists(id)).toBe(false);
    expect(await sweepStaleGuests(server.ctx)).toBe(0);
  });

  test("is registered as a maintenance task", async () => {
    travelTo(-ttlDays() - 1);
    const guest = await signUpGuest();
    travelTo(0);
    await Promise.all(server.ctx.hooks.maintenance.map((task) => task()));
    expect(await exists(guest.user.id)).toBe(false);
  });
});
