import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AuthServerOptions } from "../src/config";
import { type AuthServer, type AuthServerPorts, buildAuthServer } from "../src/server";
import { PASSWORD } from "./support/admin";
import { backend, testDatabase, testStore, uniqueEmail } from "./support/server";

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

/** Two servers behind one load balancer, as in test/multi-instance.test.ts: an admin acts on one, the user is on the other. */
describe(shared ? "admin actions across two instances on one Postgres and one Redis" : "admin actions across two instances on shared embedded backends", () => {
  let a: Instance;
  let b: Instance;
  let sharedPorts: AuthServerPorts = {};
  let adminToken: string;

  beforeAll(async () => {
    const options: AuthServerOptions = {
      DATABASE_URL: backend.databaseUrl,
      REDIS_URL: backend.redisUrl,
      KV_PREFIX: `admin-multi:${crypto.randomUUID()}:`,
      RATE_LIMIT_LOGIN_IP: "10000/60",
      RATE_LIMIT_LOGIN_EMAIL: "10000/60",
      PASSWORD_HASH_MEMORY_KIB: 4096,
      PASSWORD_HASH_TIME_COST: 1,
      LOG_LEVEL: "silent",
    };
    if (!shared) sharedPorts = { database: await testDatabase(), kv: testStore() };
    const [first, second] = await Promise.all([buildAuthServer(options, sharedPorts), buildAuthServer(options, sharedPorts)]);
    a = instance(first);
    b = instance(second);
    const boss = await a.server.ctx.users.create({ email: uniqueEmail("boss"), emailVerified: true, roles: ["user", "admin"] });
    adminToken = (await a.server.ctx.sessions.create(boss, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
  }, 30_000);

  afterAll(async () => {
    await Promise.all([a?.server.close(), b?.server.close()]);
    await Promise.allSettled([sharedPorts.database?.close(), sharedPorts.kv?.close()]);
  });

  async function register(on: Instance) {
    const email = uniqueEmail("multi");
    const res = await on.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(res.status).toBe(201);
    return { id: res.body.user.id as string, email, token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
  }

  test("a ban on one: the user's token is refused on the other at once, and every way back in there too", async () => {
    const member = await register(b);
    expect((await b.request("GET", "/auth/me", { token: member.token })).status).toBe(200);
    expect((await a.request("POST", `/auth/admin/users/${member.id}/ban`, { body: { reason: "abuse" }, token: adminToken })).status).toBe(200);
    expect((await b.request("GET", "/auth/me", { token: member.token })).status).toBe(401);
    expect((await b.request("GET", "/auth/session", { token: member.token })).status).toBe(401);
    expect((await b.request("POST", "/auth/refresh", { body: { refreshToken: member.refreshToken } })).status).toBe(401);
    const login = await b.request("POST", "/auth/login", { body: { email: member.email, password: PASSWORD } });
    expect(login.status).toBe(403);
    expect(login.body.code).toBe("USER_BANNED");
  });

  test("a role change on one: the user's token is refused on the other at once; a demoted admin is refused there too", async () => {
    const member = await register(b);
    expect((await a.request("PATCH", `/auth/admin/users/${member.id}`, { body: { roles: ["user", "support"] }, token: adminToken })).status).toBe(200);
    expect((await b.request("GET", "/auth/me", { token: member.token })).status).toBe(401);

    const other = await register(b);
    expect((await a.request("PATCH", `/auth/admin/users/${other.id}`, { body: { roles: ["user", "admin"] }, token: adminToken })).status).toBe(200);
    const promoted = await b.request("POST", "/auth/login", { body: { email: other.email, password: PASSWORD } });
    expect((await b.request("GET", "/auth/admin/users?limit=1", { token: promoted.body.accessToken })).status).toBe(200);
    expect((await a.request("PATCH", `/auth/admin/users/${other.id}`, { body: { roles: ["user"] }, token: adminToken })).status).toBe(200);
    expect((await b.request("GET", "/auth/admin/users?limit=1", { token: promoted.body.accessToken })).status).toBe(401);
  });

  test("an impersonation made on one works on the other until the user's sessions are ended on the first", async () => {
    const member = await register(b);
    const imp = await a.request("POST", `/auth/admin/users/${member.id}/impersonate`, { token: adminToken });
    expect((await b.request("GET", "/auth/me", { token: imp.body.accessToken })).body.id).toBe(member.id);
    expect((await a.request("DELETE", `/auth/admin/users/${member.id}/sessions`, { token: adminToken })).status).toBe(204);
    expect((await b.request("GET", "/auth/me", { token: imp.body.accessToken })).status).toBe(401);
  });
});
