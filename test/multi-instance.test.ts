import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { AuthServerOptions } from "../src/config";
import { openPostgres } from "../src/db/postgres";
import { type AuthServer, type AuthServerPorts, buildAuthServer } from "../src/server";
import { backend, testDatabase, testStore, uniqueEmail } from "./support/server";

const PASSWORD = "correct horse battery staple";
const shared = Boolean(backend.databaseUrl && backend.redisUrl);

type Instance = { server: AuthServer; request(method: string, path: string, opts?: { body?: unknown; token?: string }): Promise<{ status: number; body: any }> };

function instance(server: AuthServer): Instance {
  return {
    server,
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.body !== undefined) headers["content-type"] = "application/json";
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const res = await server.app.handle(new Request(`http://localhost${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) }));
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

/**
 * Two servers as a load balancer would see them. On Postgres + Redis each opens its own connections (same
 * KV_PREFIX, as a deployment would set it); on the embedded default they share one PGlite and one memory store,
 * which is what "stateless instances" means inside one process.
 */
describe(shared ? "two instances on one Postgres and one Redis" : "two instances on shared embedded backends", () => {
  let a: Instance;
  let b: Instance;
  let sharedPorts: AuthServerPorts = {};

  beforeAll(async () => {
    const options: AuthServerOptions = {
      DATABASE_URL: backend.databaseUrl,
      REDIS_URL: backend.redisUrl,
      KV_PREFIX: `multi:${crypto.randomUUID()}:`,
      REFRESH_REUSE_GRACE_S: 0,
      RATE_LIMIT_LOGIN_EMAIL: "3/60",
      RATE_LIMIT_LOGIN_IP: "10000/60",
      RATE_LIMIT_REFRESH_SESSION: "4/60",
      PASSWORD_HASH_MEMORY_KIB: 4096,
      PASSWORD_HASH_TIME_COST: 1,
      LOG_LEVEL: "silent",
    };
    if (!shared) sharedPorts = { database: await testDatabase(), kv: testStore() };
    const [first, second] = await Promise.all([buildAuthServer(options, sharedPorts), buildAuthServer(options, sharedPorts)]);
    a = instance(first);
    b = instance(second);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([a?.server.close(), b?.server.close()]);
    await Promise.allSettled([sharedPorts.database?.close(), sharedPorts.kv?.close()]);
  });

  async function register(on: Instance) {
    const res = await on.request("POST", "/auth/register", { body: { email: uniqueEmail("multi"), password: PASSWORD } });
    expect(res.status).toBe(201);
    return res.body as { accessToken: string; refreshToken: string; user: { id: string; email: string } };
  }

  test("a session made on one is refused on the other right after logout there", async () => {
    const session = await register(a);
    expect((await b.request("GET", "/auth/me", { token: session.accessToken })).status).toBe(200);
    expect((await a.request("POST", "/auth/logout", { token: session.accessToken })).status).toBe(204);
    const refused = await b.request("GET", "/auth/me", { token: session.accessToken });
    expect(refused.status).toBe(401);
    expect((await a.request("GET", "/auth/me", { token: session.accessToken })).status).toBe(401);
    expect((await b.request("POST", "/auth/refresh", { body: { refreshToken: session.refreshToken } })).status).toBe(401);
  });

  test("a rate limit counted on one holds on the other", async () => {
    const { user } = await register(b);
    const wrong = { email: user.email, password: "not the password at all" };
    expect((await a.request("POST", "/auth/login", { body: wrong })).status).toBe(401);
    expect((await b.request("POST", "/auth/login", { body: wrong })).status).toBe(401);
    expect((await a.request("POST", "/auth/login", { body: wrong })).status).toBe(401);
    const limited = await b.request("POST", "/auth/login", { body: { email: user.email, password: PASSWORD } });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect((await a.request("POST", "/auth/login", { body: { email: user.email, password: PASSWORD } })).status).toBe(429);
  });

  test("a session's refresh limit counted on one holds on the other", async () => {
    const session = await register(a);
    let refreshToken = session.refreshToken;
    for (const on of [a, b, a, b]) {
      const res = await on.request("POST", "/auth/refresh", { body: { refreshToken } });
      expect(res.status).toBe(200);
      refreshToken = res.body.refreshToken;
    }
    for (const on of [a, b]) {
      const limited = await on.request("POST", "/auth/refresh", { body: { refreshToken } });
      expect(limited.status).toBe(429);
      expect(limited.body.code).toBe("RATE_LIMITED");
    }
  });

  test("a refresh token rotated on one is caught as reused on the other, and the session dies on both", async () => {
    const session = await register(a);
    const rotated = await a.request("POST", "/auth/refresh", { body: { refreshToken: session.refreshToken } });
    expect(rotated.status).toBe(200);
    const reused = await b.request("POST", "/auth/refresh", { body: { refreshToken: session.refreshToken } });
    expect(reused.status).toBe(401);
    for (const on of [a, b]) {
      expect((await on.request("GET", "/auth/me", { token: rotated.body.accessToken })).status).toBe(401);
      expect((await on.request("POST", "/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } })).status).toBe(401);
    }
  });
});

describe.if(Boolean(backend.databaseUrl))("instances starting together", () => {
  test("two concurrent migrations of a fresh database apply it once, without error", async () => {
    const admin = postgres(backend.databaseUrl as string, { max: 1, onnotice: () => {} });
    const name = `test_mig_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    await admin.unsafe(`create database ${name}`);
    try {
      const url = new URL(backend.databaseUrl as string);
      url.pathname = `/${name}`;
      const first = openPostgres(url.toString(), 5000);
      const second = openPostgres(url.toString(), 5000);
      try {
        await Promise.all([first.migrate(), second.migrate()]);
        const check = postgres(url.toString(), { max: 1, onnotice: () => {} });
        try {
          const applied = await check`select count(*)::int as n from drizzle.__drizzle_migrations`;
          const journal = (await Bun.file(new URL("../drizzle/meta/_journal.json", import.meta.url)).json()) as { entries: unknown[] };
          expect(applied[0]?.n).toBe(journal.entries.length);
          const users = await check`select count(*)::int as n from information_schema.tables where table_schema = 'public' and table_name = 'users'`;
          expect(users[0]?.n).toBe(1);
        } finally {
          await check.end();
        }
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  }, 30_000);
});
