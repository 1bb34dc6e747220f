import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq, inArray } from "drizzle-orm";
import { decodeJwt } from "jose";
import { Secret, TOTP } from "otpauth";
import { webhookDeliveries } from "../plugins/webhooks/schema";
import { retryDelayMs } from "../plugins/webhooks/service";
import { auditEvents, users } from "../src/db/schema";
import { ConfigError, loadConfig } from "../src/config";
import type { Database } from "../src/db";
import { EVENT_TYPES } from "../src/events";
import { type AuthServer, buildAuthServer } from "../src/server";
import { backend, createTestServer, type TestServer, testDatabase, testStore, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";
import { newSecret, type Receiver, type ReceivedWebhook, startReceiver, startSocketCloser, verifyWith } from "./support/webhook-receiver";

const PASSWORD = "correct horse battery staple";
const FAST = { PASSWORD_HASH_MEMORY_KIB: "4096", PASSWORD_HASH_TIME_COST: "1", LOG_LEVEL: "silent" };

// Servers boot and receivers wait out retries; a file run after another does not get the preload's timeout.
setDefaultTimeout(60_000);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A receiver and a server sending to it, both stopped after the test. */
async function serverWith(receiver: { url: string }, options: Record<string, string | number> = {}, ports = {}) {
  const secret = newSecret();
  const server = await createTestServer({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: secret, ...options }, ports);
  cleanups.push(() => server.close());
  return { server, secret };
}

function receiver(mode?: Parameters<typeof startReceiver>[0]): Receiver {
  const r = startReceiver(mode);
  cleanups.push(() => r.stop());
  return r;
}

async function register(server: TestServer, email = uniqueEmail("hook"), opts: { token?: string; headers?: Record<string, string> } = {}) {
  const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, ...opts });
  expect(res.status).toBe(201);
  return res.body as { user: { id: string; email: string }; accessToken: string; refreshToken: string };
}

/** This server's deliveries: on Postgres every test server shares one database, so rows are told apart by URL. */
async function deliveryRows(server: AuthServer) {
  return server.ctx.db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.url, server.ctx.config.WEBHOOK_URLS));
}

/** Waits until every delivery row satisfies `check` (the receiver hears an attempt a moment before its result is written). */
async function rowsSettle(server: AuthServer, check: (row: Awaited<ReturnType<typeof deliveryRows>>[number]) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await deliveryRows(server);
    if (rows.length > 0 && rows.every(check)) return rows;
    if (Date.now() > deadline) return rows;
    await Bun.sleep(25);
  }
}

describe("settings", () => {
  const secret = newSecret();
  const variableOf = (options: Record<string, string>) => {
    try {
      loadConfig(options);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).not.toContain(options.WEBHOOK_SECRET?.slice(6) || "\u0000");
      return (error as ConfigError).variable;
    }
    return undefined;
  };

  test("the plugin is on when WEBHOOK_URLS is set and AUTH_PLUGINS is unset or lists it", () => {
    expect(loadConfig({}).plugins.has("webhooks")).toBe(false);
    expect(loadConfig({ WEBHOOK_URLS: "https://hooks.example.com/a", WEBHOOK_SECRET: secret }).plugins.has("webhooks")).toBe(true);
    expect(loadConfig({ WEBHOOK_URLS: "https://hooks.example.com/a", WEBHOOK_SECRET: secret, AUTH_PLUGINS: "password" }).plugins.has("webhooks")).toBe(false);
    expect(loadConfig({ WEBHOOK_URLS: "https://hooks.example.com/a", WEBHOOK_SECRET: secret, AUTH_PLUGINS: "password,webhooks" }).plugins.has("webhooks")).toBe(true);
  });

  test("defaults: every event, 8 attempts, a base of 5 s", () => {
    const config = loadConfig({ WEBHOOK_URLS: "https://a.example.com/h, https://b.example.com/h", WEBHOOK_SECRET: `${secret} ${newSecret(24)}` });
    expect(config.WEBHOOK_URLS).toEqual(["https://a.example.com/h", "https://b.example.com/h"]);
    expect(config.WEBHOOK_SECRET).toHaveLength(2);
    expect(config.WEBHOOK_EVENTS).toEqual([]);
    expect(config.WEBHOOK_MAX_ATTEMPTS).toBe(8);
    expect(config.WEBHOOK_BACKOFF_S).toBe(5);
  });

  test("a bad combination names its variable, and never repeats a secret", () => {
    const url = "https://hooks.example.com/in";
    expect(variableOf({ WEBHOOK_URLS: url })).toBe("WEBHOOK_SECRET");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: newSecret(16) })).toBe("WEBHOOK_SECRET");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: secret.replace("whsec_", "") })).toBe("WEBHOOK_SECRET");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: `${secret} whsec_short` })).toBe("WEBHOOK_SECRET");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: secret, WEBHOOK_EVENTS: "user.created,user.exploded" })).toBe("WEBHOOK_EVENTS");
    expect(variableOf({ WEBHOOK_URLS: "ftp://hooks.example.com/in", WEBHOOK_SECRET: secret })).toBe("WEBHOOK_URLS");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: secret, WEBHOOK_MAX_ATTEMPTS: "0" })).toBe("WEBHOOK_MAX_ATTEMPTS");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: secret, WEBHOOK_BACKOFF_S: "-1" })).toBe("WEBHOOK_BACKOFF_S");
    expect(variableOf({ WEBHOOK_URLS: url, WEBHOOK_SECRET: secret, WEBHOOK_EVENTS: "user.created,session.revoked" })).toBeUndefined();
  });

  test("bun run start stops with one line naming WEBHOOK_SECRET when the URLs have no secret", async () => {
    const proc = Bun.spawn(["bun", "run", "src/index.ts"], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, WEBHOOK_URLS: "https://hooks.example.com/in", WEBHOOK_SECRET: "", DATABASE_URL: "", REDIS_URL: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await proc.exited).toBe(1);
    const stderr = (await new Response(proc.stderr).text()).trim();
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toStartWith("Invalid setting WEBHOOK_SECRET:");
  });

  test("retries wait BACKOFF x 1, 6, 24, 120, 720, then 6 h at the default base, each +-20%", () => {
    const steps = [1, 6, 24, 120, 720, 4320, 4320];
    steps.forEach((step, i) => {
      expect(retryDelayMs(i + 1, 5, () => 0)).toBeCloseTo(5000 * step * 0.8);
      expect(retryDelayMs(i + 1, 5, () => 1)).toBeCloseTo(5000 * step * 1.2);
      expect(retryDelayMs(i + 1, 5, () => 0.5)).toBeCloseTo(5000 * step);
    });
    expect(retryDelayMs(6, 5, () => 0.5)).toBe(6 * 3600 * 1000);
  });
});

describe("delivery", () => {
  test("a sign-up's events leave within a second, signed per Standard Webhooks with every secret of a rotation", async () => {
    const hooks = receiver();
    const [oldSecret, newSecretValue] = [newSecret(), newSecret(24)];
    const server = await createTestServer({ WEBHOOK_URLS: hooks.url, WEBHOOK_SECRET: `${oldSecret} ${newSecretValue}` });
    cleanups.push(() => server.close());
    const tokens = await register(server, uniqueEmail("sign"), { headers: { "user-agent": "hook-test" } });
    const answeredAt = Date.now();
    await hooks.waitFor((r) => r.length >= 2, 1000, "user.created and user.signed_in within a second");

    const created = hooks.ofType("user.created")[0] as ReceivedWebhook;
    const signedIn = hooks.ofType("user.signed_in")[0] as ReceivedWebhook;
    for (const hook of [created, signedIn]) {
      expect(hook.at - answeredAt).toBeLessThan(1000);
      expect(hook.id).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(Math.abs(Number(hook.timestamp) - Date.now() / 1000)).toBeLessThan(5);
      expect(hook.signature.split(" ")).toHaveLength(2);
      // Each endpoint knows one of the secrets during a rotation: either verifies on its own.
      expect(verifyWith(oldSecret, hook)).toEqual(hook.event);
      expect(verifyWith(newSecretValue, hook)).toEqual(hook.event);
      expect(() => verifyWith(newSecret(), hook)).toThrow();
      expect(Object.keys(hook.event).sort()).toEqual(["data", "timestamp", "type"]);
      expect(new Date(hook.event.timestamp).toISOString()).toBe(hook.event.timestamp);
    }
    expect(created.event.data).toEqual({ user: tokens.user });
    const session = decodeJwt(tokens.accessToken).sid;
    expect(signedIn.event.data).toEqual({ user: tokens.user, session: { id: session, amr: ["pwd"], ip: null, userAgent: "hook-test" } });
  });

  test("each URL gets its own webhook-id for one event; WEBHOOK_EVENTS keeps only the types it names", async () => {
    const [a, b] = [receiver(), receiver()];
    const { server } = await serverWith({ url: `${a.url},${b.url}` }, { WEBHOOK_EVENTS: "user.created" });
    await register(server);
    await a.waitFor((r) => r.length === 1);
    await b.waitFor((r) => r.length === 1);
    await Bun.sleep(300);
    expect(a.received.map((r) => r.event.type)).toEqual(["user.created"]);
    expect(b.received.map((r) => r.event.type)).toEqual(["user.created"]);
    expect(a.received[0]?.id).not.toBe(b.received[0]?.id);
    expect(a.received[0]?.body).toBe(b.received[0]?.body as string);
  });

  test("a failing receiver is retried with the same webhook-id until it answers 2xx", async () => {
    const hooks = receiver("fail");
    const { server } = await serverWith(hooks, { WEBHOOK_BACKOFF_S: "0.1", WEBHOOK_EVENTS: "user.created" });
    await register(server);
    await hooks.waitFor((r) => r.length >= 2, 10_000, "two failed attempts");
    hooks.mode = "ok";
    await hooks.waitFor((r) => r.some((x) => x.answered === "ok"), 15_000, "a delivered attempt");
    const ids = new Set(hooks.received.map((r) => r.id));
    expect(ids.size).toBe(1);
    const [row] = await rowsSettle(server, (r) => r.status === "delivered");
    expect(row?.status).toBe("delivered");
    expect(row?.attempts).toBe(hooks.received.length);
    expect(row?.lastResponseStatus).toBe(204);
  });

  test("a redirect, a broken answer, a closed socket and a late answer are failed attempts; past WEBHOOK_MAX_ATTEMPTS the delivery is failed", async () => {
    const closer = startSocketCloser();
    cleanups.push(() => closer.stop());
    for (const mode of ["redirect", "broken", "hang"] as const) {
      const hooks = receiver(mode);
      const { server } = await serverWith(hooks, { WEBHOOK_BACKOFF_S: "0.05", WEBHOOK_MAX_ATTEMPTS: "2", WEBHOOK_EVENTS: "user.created" });
      await register(server);
      const deadline = Date.now() + 15_000;
      let row = (await deliveryRows(server))[0];
      while (row?.status !== "failed" && Date.now() < deadline) {
        await Bun.sleep(50);
        row = (await deliveryRows(server))[0];
      }
      expect({ mode, status: row?.status, attempts: row?.attempts }).toEqual({ mode, status: "failed", attempts: 2 });
      expect(hooks.received).toHaveLength(2);
      expect(hooks.received[0]?.id).toBe(hooks.received[1]?.id as string);
      if (mode === "redirect") expect(row?.lastResponseStatus).toBe(302);
      else expect(row?.lastResponseStatus).toBeNull();
      // On Postgres every server's worker claims every due row: one left running (with its own WEBHOOK_MAX_ATTEMPTS)
      // would take part in the next case's deliveries.
      await server.close();
    }
    const { server } = await serverWith(closer, { WEBHOOK_BACKOFF_S: "0.05", WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_EVENTS: "user.created" });
    await register(server);
    const deadline = Date.now() + 15_000;
    while ((await deliveryRows(server))[0]?.status !== "failed" && Date.now() < deadline) await Bun.sleep(50);
    const [row] = await deliveryRows(server);
    expect(row?.status).toBe("failed");
    expect(row?.attempts).toBe(3);
    // Each attempt opened a connection that closed on it (fetch may send a retry over the same refused socket, so the
    // count of connections is not the count of attempts; the row's is).
    expect(closer.connections).toBeGreaterThan(0);
  }, 40_000);

  test("a hanging receiver neither slows the request that made the event nor holds more than a bounded number of attempts", async () => {
    const hooks = receiver("hang");
    const { server } = await serverWith(hooks, { WEBHOOK_EVENTS: "user.created,user.signed_in", RATE_LIMIT_ANONYMOUS_IP: "10000/60" });
    const started = performance.now();
    await register(server);
    // The answer does not wait for the attempt, which hangs until the 5 s timeout.
    expect(performance.now() - started).toBeLessThan(2000);
    const guests = await Promise.all(Array.from({ length: 40 }, () => server.request("POST", "/auth/anonymous")));
    expect(guests.every((g) => g.status === 201)).toBe(true);
    await Bun.sleep(800);
    // 82 events are due, all hanging: each instance holds a fixed number in flight, the rest wait in the table.
    expect(hooks.received.length).toBeGreaterThan(0);
    expect(hooks.received.length).toBeLessThanOrEqual(16);
    const pending = (await deliveryRows(server)).filter((r) => r.status === "pending");
    expect(pending).toHaveLength(82);
  }, 20_000);

  test("a change that rolls back sends nothing; one that commits sends once", async () => {
    const hooks = receiver();
    const refused = uniqueEmail("rolled-back");
    const { server } = await serverWith(hooks, {}, {
      // Throws inside the sign-in's transaction for one user: its session and its user.signed_in must both roll back.
      hooks: { accessTokenClaims: (user: { email: string | null }) => (user.email === refused ? { iss: "evil" } : { tier: "free" }) },
    });
    const before = await server.request("POST", "/auth/register", { body: { email: refused, password: PASSWORD } });
    expect(before.status).toBe(500);
    // The account committed before the sign-in, so it was announced; the failed sign-up then deleted it again (its
    // session and user.signed_in never committed, so they are never sent).
    await hooks.waitFor((r) => r.length >= 2);
    await Bun.sleep(500);
    // Deliveries go out in parallel, so they may arrive in either order.
    expect(hooks.received.map((r) => r.event.type).sort()).toEqual(["user.created", "user.deleted"]);
    expect(await deliveryRows(server)).toHaveLength(2);
  });

  test("old delivered rows are swept; pending and recent ones stay", async () => {
    const hooks = receiver();
    const clock = movableClock();
    const { server } = await serverWith(hooks, { WEBHOOK_EVENTS: "user.created" }, { clock });
    await register(server);
    await hooks.waitFor((r) => r.length === 1);
    await Bun.sleep(200);
    hooks.mode = "fail";
    await register(server);
    await hooks.waitFor((r) => r.length === 2);
    for (const task of server.ctx.hooks.maintenance) await task();
    expect(await deliveryRows(server)).toHaveLength(2);
    clock.advance(8 * 24 * 3600);
    for (const task of server.ctx.hooks.maintenance) await task();
    const left = await deliveryRows(server);
    expect(left.map((r) => r.status)).toEqual(["pending"]);
  });
});

describe("durability", () => {
  test("deliveries pending at a restart leave from the next start, with the same webhook-id", async () => {
    const hooks = receiver("fail");
    const database = await testDatabase();
    cleanups.push(() => database.close());
    const secret = newSecret();
    const options = { ...FAST, WEBHOOK_URLS: hooks.url, WEBHOOK_SECRET: secret, WEBHOOK_BACKOFF_S: "0.2", WEBHOOK_EVENTS: "user.created" };
    const first = await buildAuthServer(options, { database, kv: testStore() });
    const emails = [uniqueEmail("restart"), uniqueEmail("restart")];
    for (const email of emails) {
      const res = await first.app.handle(
        new Request("http://localhost/auth/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password: PASSWORD }) }),
      );
      expect(res.status).toBe(201);
    }
    await hooks.waitFor((r) => r.length >= 2, 10_000);
    await first.close();
    const failedIds = new Set(hooks.received.map((r) => r.id));
    hooks.mode = "ok";
    const second = await buildAuthServer(options, { database, kv: testStore() });
    cleanups.push(() => second.close());
    await hooks.waitFor((r) => r.filter((x) => x.answered === "ok").length === 2, 15_000, "both deliveries after the restart");
    const delivered = hooks.delivered();
    expect(new Set(delivered.map((r) => r.id))).toEqual(failedIds);
    for (const hook of delivered) expect(verifyWith(secret, hook)).toEqual(hook.event);
    expect(delivered.map((r) => (r.event.data.user as { email: string }).email).sort()).toEqual(emails.sort());
  }, 20_000);

  test("a server killed mid-delivery leaves the row to be delivered once more, with the same webhook-id", async () => {
    const hooks = receiver("hang");
    const secret = newSecret();
    const dataDir = mkdtempSync(join(tmpdir(), "webhooks-crash-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const email = uniqueEmail("crash");
    const env = {
      ...process.env,
      ...FAST,
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: backend.databaseUrl ?? "",
      REDIS_URL: "",
      DATA_DIR: dataDir,
      WEBHOOK_URLS: hooks.url,
      WEBHOOK_SECRET: secret,
      WEBHOOK_EVENTS: "user.created",
      LOG_LEVEL: "info",
    };
    const proc = Bun.spawn(["bun", "run", "src/index.ts"], { cwd: `${import.meta.dir}/..`, env, stdout: "pipe", stderr: "pipe" });
    cleanups.push(() => proc.kill("SIGKILL"));
    const reader = proc.stdout.getReader();
    let port = 0;
    let out = "";
    while (!port) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server did not start: ${out}`);
      out += new TextDecoder().decode(value);
      port = Number(/"msg":"listening","port":(\d+)/.exec(out)?.[1] ?? 0);
    }
    const res = await fetch(`http://127.0.0.1:${port}/auth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password: PASSWORD }) });
    expect(res.status).toBe(201);
    await hooks.waitFor((r) => r.length === 1, 10_000, "the attempt that will never finish");
    proc.kill("SIGKILL");
    await proc.exited;
    hooks.mode = "ok";

    const database: Database = backend.databaseUrl ? await testDatabase() : await (await import("../src/db/pglite")).createPglite(dataDir, 3000);
    cleanups.push(() => database.close());
    const next = await buildAuthServer({ ...FAST, WEBHOOK_URLS: hooks.url, WEBHOOK_SECRET: secret, WEBHOOK_EVENTS: "user.created" }, { database, kv: testStore() });
    cleanups.push(() => next.close());
    // The dead worker's claim runs out (CLAIM_LEASE_MS), then the row is due again for any instance.
    await hooks.waitFor((r) => r.length >= 2 && r.some((x) => x.answered === "ok"), 40_000, "the delivery after the crash");
    const ours = hooks.received.filter((r) => (r.event.data.user as { email: string }).email === email);
    expect(ours).toHaveLength(2);
    expect(ours[1]?.id).toBe(ours[0]?.id as string);
    expect(verifyWith(secret, ours[1] as ReceivedWebhook)).toEqual(ours[0]?.event);
  }, 150_000);

  test("after an outage of the receiver, everything sent during it arrives", async () => {
    const hooks = receiver();
    const port = Number(new URL(hooks.url).port);
    const { server } = await serverWith(hooks, { WEBHOOK_BACKOFF_S: "0.05", RATE_LIMIT_ANONYMOUS_IP: "10000/60" });
    await hooks.stop();
    // The receiver is gone (connections refused) while 20 guests sign up: 40 events.
    const guests = await Promise.all(Array.from({ length: 20 }, () => server.request("POST", "/auth/anonymous")));
    expect(guests.every((g) => g.status === 201)).toBe(true);
    await Bun.sleep(3000);
    const back = startReceiver("ok", port);
    cleanups.push(() => back.stop());
    await back.waitFor((r) => new Set(r.map((x) => x.id)).size === 40, 15_000, "all 40 events after the outage");
    const rows = await rowsSettle(server, (r) => r.status === "delivered");
    expect(rows).toHaveLength(40);
    expect(rows.every((r) => r.status === "delivered" && r.attempts > 1)).toBe(true);
    const ids = guests.map((g) => g.body.user.id).sort();
    expect([...new Set(back.ofType("user.created").map((r) => (r.event.data.user as { id: string }).id))].sort()).toEqual(ids);
  }, 30_000);
});

describe(backend.databaseUrl ? "two instances on one Postgres" : "two instances on one embedded database", () => {
  let database: Database | undefined;
  let instances: AuthServer[] = [];
  afterAll(async () => {
    await Promise.all(instances.map((i) => i.close()));
    await database?.close();
  });

  test("100 events made on each are each delivered exactly once", async () => {
    const hooks = receiver();
    const secret = newSecret();
    const options = {
      ...FAST,
      DATABASE_URL: backend.databaseUrl,
      REDIS_URL: backend.redisUrl,
      KV_PREFIX: `webhooks:${crypto.randomUUID()}:`,
      RATE_LIMIT_ANONYMOUS_IP: "10000/60",
      RATE_LIMIT_SIGNUP_IP: "10000/60",
      WEBHOOK_URLS: hooks.url,
      WEBHOOK_SECRET: secret,
    };
    // On Postgres each instance opens its own pool, as two processes would; embedded, they share the one database.
    if (!backend.databaseUrl) database = await testDatabase();
    const ports = database ? { database, kv: testStore() } : {};
    instances = await Promise.all([buildAuthServer(options, ports), buildAuthServer(options, ports)]);
    // Each guest sign-up makes two events (user.created, user.signed_in): 50 per instance is 100 events each.
    await Promise.all(
      instances.flatMap((instance) =>
        Array.from({ length: 50 }, async () => {
          const res = await instance.app.handle(new Request("http://localhost/auth/anonymous", { method: "POST" }));
          expect(res.status).toBe(201);
        }),
      ),
    );
    await hooks.waitFor((r) => r.length >= 200, 15_000, "200 deliveries");
    await Bun.sleep(1500);
    expect(hooks.received).toHaveLength(200);
    expect(new Set(hooks.received.map((r) => r.id)).size).toBe(200);
    expect(hooks.received.filter((r) => r.event.type === "user.created")).toHaveLength(100);
    for (const hook of hooks.received.slice(0, 10)) expect(verifyWith(secret, hook)).toEqual(hook.event);
  }, 60_000);
});

describe("admin routes", () => {
  const ADMIN = uniqueEmail("hook-admin");
  let server: TestServer;
  let hooks: Receiver;
  let admin: string;

  beforeAll(async () => {
    hooks = startReceiver("fail");
    server = await createTestServer({
      ADMIN_EMAILS: ADMIN,
      WEBHOOK_URLS: hooks.url,
      WEBHOOK_SECRET: newSecret(),
      WEBHOOK_MAX_ATTEMPTS: "1",
      WEBHOOK_EVENTS: "user.created",
    });
    // The listing shows every delivery in the database, which on Postgres other tests' servers share.
    await server.ctx.db.delete(webhookDeliveries);
    const user = await server.ctx.users.create({ email: ADMIN, emailVerified: true });
    admin = (await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    expect(decodeJwt(admin).roles).toContain("admin");
  }, 30_000);
  afterAll(async () => {
    await server.close();
    await hooks.stop();
  });

  test("a manual retry changes something: a token whose last proof of a factor is older than REAUTH_MAX_AGE_S gets 403 REAUTH_REQUIRED", async () => {
    const claims = decodeJwt(admin) as { sub: string; sid: string; roles: string[]; amr: string[] };
    const stale = await server.ctx.tokens.sign({ sub: claims.sub, sid: claims.sid, roles: claims.roles, amr: claims.amr, auth_time: Math.floor(Date.now() / 1000) - 301 });
    const res = await server.request("POST", "/auth/admin/webhooks/deliveries/0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee/retry", { token: stale });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("REAUTH_REQUIRED");
    const fresh = await server.request("POST", "/auth/admin/webhooks/deliveries/0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee/retry", { token: admin });
    expect(fresh.status).toBe(404);
  });

  test("admins list deliveries newest first, filtered and paged; a manual retry makes one more attempt with the same id", async () => {
    const made: Array<Awaited<ReturnType<typeof register>>> = [];
    for (let i = 0; i < 3; i++) made.push(await register(server));
    await hooks.waitFor((r) => r.length === 3);
    await Bun.sleep(300);

    const all = await server.request("GET", "/auth/admin/webhooks/deliveries?status=failed&type=user.created&limit=2", { token: admin });
    expect(all.status).toBe(200);
    expect(all.body.deliveries).toHaveLength(2);
    const first = all.body.deliveries[0];
    expect(Object.keys(first).sort()).toEqual(["attempts", "createdAt", "id", "lastAttemptAt", "lastResponseStatus", "nextAttemptAt", "status", "type", "url"]);
    expect(first).toMatchObject({ url: hooks.url, type: "user.created", status: "failed", attempts: 1, lastResponseStatus: 500, nextAttemptAt: null });
    const newest = hooks.received.find((r) => (r.event.data.user as { id: string }).id === made[2]?.user.id);
    expect(first.id).toBe(newest?.id);
    const rest = await server.request("GET", `/auth/admin/webhooks/deliveries?status=failed&limit=2&cursor=${all.body.nextCursor}`, { token: admin });
    expect(rest.body.deliveries).toHaveLength(1);
    expect(rest.body.nextCursor).toBeNull();
    const none = await server.request("GET", "/auth/admin/webhooks/deliveries?status=delivered", { token: admin });
    expect(none.body.deliveries).toEqual([]);
    expect((await server.request("GET", "/auth/admin/webhooks/deliveries?status=lost", { token: admin })).status).toBe(400);
    expect((await server.request("GET", "/auth/admin/webhooks/deliveries?limit=101", { token: admin })).status).toBe(400);

    hooks.mode = "ok";
    const retry = await server.request("POST", `/auth/admin/webhooks/deliveries/${first.id}/retry`, { token: admin });
    expect(retry.status).toBe(202);
    await hooks.waitFor((r) => r.some((x) => x.answered === "ok"), 5000, "the manual retry");
    const again = hooks.delivered();
    await rowsSettle(server, (r) => r.id !== first.id || r.status === "delivered");
    expect(again).toHaveLength(1);
    expect(again[0]?.id).toBe(first.id);
    const after = await server.request("GET", "/auth/admin/webhooks/deliveries?status=delivered", { token: admin });
    expect(after.body.deliveries.map((d: { id: string }) => d.id)).toEqual([first.id]);
    expect(after.body.deliveries[0]).toMatchObject({ attempts: 2, lastResponseStatus: 204 });
    const audit = await server.ctx.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.type, "webhook_retried"), eq(auditEvents.userId, decodeJwt(admin).sub as string)));
    expect(audit).toHaveLength(1);
    expect(audit[0]?.data).toEqual({ adminId: decodeJwt(admin).sub, deliveryId: first.id });

    expect((await server.request("POST", "/auth/admin/webhooks/deliveries/msg_unknown/retry", { token: admin })).status).toBe(404);
  });

  test("the spec documents both routes and the events' format", async () => {
    const spec = (await server.request("GET", "/docs/json")).body;
    const listing = spec.paths["/auth/admin/webhooks/deliveries"]?.get;
    expect(listing.description).toContain("webhook-signature");
    for (const type of EVENT_TYPES) expect(listing.description).toContain(`\`${type}\``);
    expect(spec.paths["/auth/admin/webhooks/deliveries/{id}/retry"]?.post).toBeDefined();
  });

  test("anyone but an admin is refused", async () => {
    const user = await register(server);
    const list = await server.request("GET", "/auth/admin/webhooks/deliveries", { token: user.accessToken });
    expect(list.status).toBe(403);
    expect(list.body.code).toBe("FORBIDDEN");
    const rows = await deliveryRows(server);
    const retry = await server.request("POST", `/auth/admin/webhooks/deliveries/${rows[0]?.id}/retry`, { token: user.accessToken });
    expect(retry.status).toBe(403);
    expect((await server.request("GET", "/auth/admin/webhooks/deliveries")).status).toBe(401);
  });

  test("the caller is judged before the input: a member with a bad query, status or id gets 403, not 400", async () => {
    const user = await register(server);
    for (const [method, path] of [
      ["GET", "/auth/admin/webhooks/deliveries?limit=0"],
      ["GET", "/auth/admin/webhooks/deliveries?status=lost"],
      ["POST", `/auth/admin/webhooks/deliveries/${"x".repeat(80)}/retry`],
    ] as const) {
      const res = await server.request(method, path, { token: user.accessToken });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
  });

  test("the role is read from the database: a token still claiming admin for a user who no longer is one gets 403", async () => {
    const email = uniqueEmail("ex-admin");
    const user = await server.ctx.users.create({ email, emailVerified: true, roles: ["user", "admin"] });
    const token = (await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    expect(decodeJwt(token).roles).toContain("admin");
    expect((await server.request("GET", "/auth/admin/webhooks/deliveries", { token })).status).toBe(200);
    // Behind the service's back, as a second instance started without the role's source would see it.
    await server.ctx.db.update(users).set({ roles: ["user"] }).where(eq(users.id, user.id));
    const res = await server.request("GET", "/auth/admin/webhooks/deliveries", { token });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("FORBIDDEN");
  });
});

describe("admin routes with the admin plugin off", () => {
  test("are not there: 404 NOT_FOUND, even for a token whose user holds the admin role", async () => {
    const hooks = startReceiver("ok");
    const server = await createTestServer({ AUTH_PLUGINS: "password,webhooks", WEBHOOK_URLS: hooks.url, WEBHOOK_SECRET: newSecret() });
    try {
      const user = await server.ctx.users.create({ email: uniqueEmail("no-admin-plugin"), emailVerified: true, roles: ["user", "admin"] });
      const token = (await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
      const res = await server.request("GET", "/auth/admin/webhooks/deliveries", { token });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("NOT_FOUND");
      expect((await server.request("POST", "/auth/admin/webhooks/deliveries/x/retry", { token })).status).toBe(404);
    } finally {
      await server.close();
      await hooks.stop();
    }
  });
});

describe("event types", () => {
  const APP_URL = "http://localhost:3000";
  const CALLBACK = `${APP_URL}/auth/oauth/oidc/callback`;
  const USER_KEYS = ["createdAt", "email", "emailVerified", "firstName", "id", "image", "isAnonymous", "lastName", "mfaEnabled", "roles", "username"];
  /** Each type's `data`, as API.md words it: its keys, and the keys of the objects it nests. */
  const SHAPES: Record<string, { keys: string[]; nested?: Record<string, string[]> }> = {
    "user.created": { keys: ["user"], nested: { user: USER_KEYS } },
    "user.updated": { keys: ["user"], nested: { user: USER_KEYS } },
    "user.deleted": { keys: ["user"], nested: { user: ["email", "id"] } },
    "user.signed_in": { keys: ["session", "user"], nested: { user: USER_KEYS, session: ["amr", "id", "ip", "userAgent"] } },
    "user.sign_in_failed": { keys: ["email", "ip", "method", "userId"] },
    "user.banned": { keys: ["reason", "until", "user"], nested: { user: USER_KEYS } },
    "user.unbanned": { keys: ["reason", "until", "user"], nested: { user: USER_KEYS } },
    "session.revoked": { keys: ["reason", "sessionId", "userId"] },
    "password.changed": { keys: ["userId"] },
    "password.reset": { keys: ["userId"] },
    "email.changed": { keys: ["email", "userId"] },
    "mfa.enabled": { keys: ["userId"] },
    "mfa.disabled": { keys: ["userId"] },
    "passkey.added": { keys: ["passkeyId", "userId"] },
    "passkey.removed": { keys: ["passkeyId", "userId"] },
    "account.linked": { keys: ["provider", "userId"] },
    "account.unlinked": { keys: ["provider", "userId"] },
    "team.created": { keys: ["team"], nested: { team: ["id", "name"] } },
    "team.deleted": { keys: ["team"], nested: { team: ["id", "name"] } },
    "team.member_added": { keys: ["role", "teamId", "userId"] },
    "team.member_removed": { keys: ["role", "teamId", "userId"] },
    "invitation.created": { keys: ["invitation"], nested: { invitation: ["email", "id", "role", "teamId"] } },
    "invitation.accepted": { keys: ["invitation"], nested: { invitation: ["email", "id", "role", "teamId"] } },
  };

  test("every type API.md lists has its shape", () => {
    expect(Object.keys(SHAPES).sort()).toEqual([...EVENT_TYPES].sort());
  });

  test("each type made through the routes carries exactly its data, and never a password, hash, token, code or secret", async () => {
    const { startTestIdp } = await import("./support/oidc-provider");
    const idp = await startTestIdp(CALLBACK);
    cleanups.push(() => idp.close());
    const hooks = receiver();
    const adminEmail = uniqueEmail("events-admin");
    const { server } = await serverWith(hooks, {
      APP_URL,
      ADMIN_EMAILS: adminEmail,
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: idp.clientId,
      OIDC_CLIENT_SECRET: idp.clientSecret,
    });
    /** Everything secret this scenario handles: none of it may appear in any webhook. */
    const secrets: string[] = [PASSWORD, idp.clientSecret];
    const keep = <T extends { accessToken?: string; refreshToken?: string }>(body: T) => {
      if (body.accessToken) secrets.push(body.accessToken);
      if (body.refreshToken) secrets.push(body.refreshToken);
      return body;
    };
    const ok = async (method: string, path: string, opts: Parameters<TestServer["request"]>[2], status = 200) => {
      const res = await server.request(method, path, opts);
      expect({ path, status: res.status, body: res.status === status ? null : res.body }).toEqual({ path, status, body: null });
      return res.body;
    };

    // Accounts, sign-ins and failures, profile.
    const email = uniqueEmail("events");
    let a = keep(await ok("POST", "/auth/register", { body: { email, password: PASSWORD } }, 201));
    const second = keep(await ok("POST", "/auth/login", { body: { email, password: PASSWORD } }));
    expect((await server.request("POST", "/auth/login", { body: { email, password: "wrong password here" } })).status).toBe(401);
    await ok("PATCH", "/auth/me", { token: a.accessToken, body: { firstName: "Eve" } });
    // Password change: the other session ends.
    const newPassword = "another horse battery staple";
    secrets.push(newPassword);
    await ok("POST", "/auth/password/change", { token: a.accessToken, body: { currentPassword: PASSWORD, newPassword } }, 204);
    expect((await server.request("GET", "/auth/me", { token: second.accessToken })).status).toBe(401);
    // Email change by mailed code.
    const newEmail = uniqueEmail("events-moved");
    await ok("POST", "/auth/email/change", { token: a.accessToken, body: { newEmail, password: newPassword } }, 202);
    const changeCode = /\b(\d{6})\b/.exec((await server.mailTo(newEmail, /\d{6}/)).text)?.[1] as string;
    secrets.push(changeCode);
    await ok("POST", "/auth/email/change/confirm", { token: a.accessToken, body: { code: changeCode } });
    // Reset by mailed link: every session ends.
    const mailsBefore = server.mailer.outbox.length;
    await ok("POST", "/auth/password/forgot", { body: { email: newEmail } }, 202);
    const resetToken = /token=([A-Za-z0-9_-]+)/.exec((await server.mailTo(newEmail, /token=/, mailsBefore)).text)?.[1] as string;
    secrets.push(resetToken);
    await ok("POST", "/auth/password/reset", { body: { token: resetToken, newPassword: PASSWORD } }, 204);
    a = keep(await ok("POST", "/auth/login", { body: { email: newEmail, password: PASSWORD } }));

    // MFA on, then off with a recovery code.
    const setup = await ok("POST", "/auth/mfa/totp/setup", { token: a.accessToken });
    secrets.push(setup.secret);
    const totp = new TOTP({ secret: Secret.fromBase32(setup.secret), algorithm: "SHA1", digits: 6, period: 30 }).generate();
    secrets.push(totp);
    const { recoveryCodes } = await ok("POST", "/auth/mfa/totp/confirm", { token: a.accessToken, body: { code: totp } });
    secrets.push(...recoveryCodes);
    await ok("POST", "/auth/mfa/disable", { token: a.accessToken, body: { code: recoveryCodes[0] } }, 204);

    // A provider identity with the same verified email is linked at sign-in, then unlinked (the password remains).
    const browser = server.browser();
    const person = idp.addAccount({ sub: `events-${crypto.randomUUID().slice(0, 8)}`, email: newEmail, email_verified: true, given_name: "Eve" });
    const authorization = await browser.request("GET", "/auth/oauth/oidc");
    const back = await idp.authorize(new URL(authorization.headers.get("location") ?? "").toString(), person.sub, CALLBACK);
    const landed = new URL((await browser.request("GET", `/auth/oauth/oidc/callback${back.search}`)).headers.get("location") ?? "");
    const exchangeCode = landed.searchParams.get("code") as string;
    secrets.push(exchangeCode);
    a = keep(await ok("POST", "/auth/oauth/exchange", { body: { code: exchangeCode } }));
    await ok("DELETE", "/auth/accounts/oidc", { token: a.accessToken }, 204);

    // A team, an invitation accepted by a new account, a removal, the team's end.
    const team = await ok("POST", "/auth/teams", { token: a.accessToken, body: { name: "Events" } }, 201);
    const invitee = uniqueEmail("events-invitee");
    await ok("POST", "/auth/invitations", { token: a.accessToken, body: { email: invitee, teamId: team.id, role: "member" } }, 201);
    const invitationToken = decodeURIComponent(/token=([A-Za-z0-9_%-]+)/.exec((await server.mailTo(invitee, /token=/)).text)?.[1] as string);
    secrets.push(invitationToken);
    const b = keep(await ok("POST", "/auth/invitations/accept", { body: { token: invitationToken, password: PASSWORD } }));
    await ok("DELETE", `/auth/teams/${team.id}/members/${b.user.id}`, { token: a.accessToken }, 204);
    await ok("DELETE", `/auth/teams/${team.id}`, { token: a.accessToken }, 204);

    // An admin bans and unbans the invitee; a guest signs up and out; the first account deletes itself.
    const adminRow = await server.ctx.users.create({ email: adminEmail, emailVerified: true });
    const admin = keep(await server.ctx.startSession(adminRow, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" }));
    await ok("POST", `/auth/admin/users/${b.user.id}/ban`, { token: admin.accessToken, body: { reason: "spam" } });
    await ok("POST", `/auth/admin/users/${b.user.id}/unban`, { token: admin.accessToken });
    const guest = keep(await ok("POST", "/auth/anonymous", {}, 201));
    await ok("POST", "/auth/logout", { token: guest.accessToken }, 204);
    await ok("DELETE", "/auth/me", { token: a.accessToken }, 204);

    // Passkeys need a browser's authenticator (test/passkeys.test.ts): here every other type.
    const expected = EVENT_TYPES.filter((t) => !t.startsWith("passkey."));
    await hooks.waitFor((r) => expected.every((t) => r.some((x) => x.event.type === t)), 10_000, "every type");
    await Bun.sleep(500);
    for (const hook of hooks.received) {
      const shape = SHAPES[hook.event.type];
      expect({ type: hook.event.type, keys: Object.keys(hook.event.data).sort() }).toEqual({ type: hook.event.type, keys: shape?.keys });
      for (const [field, keys] of Object.entries(shape?.nested ?? {})) {
        expect({ type: hook.event.type, field, keys: Object.keys(hook.event.data[field] as object).sort() }).toEqual({ type: hook.event.type, field, keys });
      }
      for (const secret of secrets) expect(hook.body).not.toContain(secret);
      expect(hook.body).not.toMatch(/\$argon2/);
      expect(hook.body).not.toMatch(/"[a-zA-Z]*(password|hash|token|code|secret)[a-zA-Z]*"\s*:/i);
    }
    const types = hooks.received.map((r) => r.event.type);
    expect(types.filter((t) => t === "session.revoked").length).toBeGreaterThanOrEqual(4);
    const banned = hooks.ofType("user.banned")[0]?.event.data;
    expect(banned).toMatchObject({ reason: "spam", until: null, user: { id: b.user.id } });
    expect(hooks.ofType("user.deleted")[0]?.event.data).toEqual({ user: { id: a.user.id, email: newEmail } });
    expect(hooks.ofType("email.changed")[0]?.event.data).toEqual({ userId: a.user.id, email: newEmail });
    expect(hooks.ofType("team.member_removed")[0]?.event.data).toEqual({ teamId: team.id, userId: b.user.id, role: "member" });
    expect(hooks.ofType("user.sign_in_failed")[0]?.event.data).toEqual({ email, userId: a.user.id, method: "password", ip: null });
  }, 120_000);
});
