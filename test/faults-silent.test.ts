import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import type { AuthServerOptions } from "../src/config";
import { MemoryMailer } from "../src/mail";
import { type AuthServer, buildAuthServer } from "../src/server";
import { CuttableProxy } from "./support/proxy";
import { backend, uniqueEmail } from "./support/server";

// Issue 18: every Postgres and Redis call bounded by BACKEND_TIMEOUT_MS, even when the network goes silent; a change
// and the revocations it implies commit together; revocations kept in Postgres, asked there while the channel is down.

const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "another horse battery staple";
const BACKEND_TIMEOUT_MS = 1000;
const PREFIX = `silent:${crypto.randomUUID()}:`;

type Answer = { status: number; body: any; ms: number };

async function call(server: AuthServer, method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<Answer> {
  const startedAt = performance.now();
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await server.app.handle(
    new Request(`http://localhost${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) }),
  );
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, ms: performance.now() - startedAt };
}

const viaProxy = (url: string, port: number) => {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
};

const target = (url: string, fallbackPort: number) => {
  const parsed = new URL(url);
  return { hostname: parsed.hostname, port: Number(parsed.port || fallbackPort) };
};

const options = (overrides: AuthServerOptions = {}): AuthServerOptions => ({
  DATABASE_URL: backend.databaseUrl,
  REDIS_URL: backend.redisUrl,
  KV_PREFIX: PREFIX,
  BACKEND_TIMEOUT_MS,
  PASSWORD_HASH_MEMORY_KIB: 4096,
  PASSWORD_HASH_TIME_COST: 1,
  RATE_LIMIT_LOGIN_IP: "10000/60",
  RATE_LIMIT_LOGIN_EMAIL: "10000/60",
  RATE_LIMIT_SIGNUP_IP: "10000/60",
  RATE_LIMIT_CODE_EMAIL: "10000/60",
  RATE_LIMIT_MAIL_IP: "10000/60",
  RATE_LIMIT_MAIL_RECIPIENT: "10000/60",
  LOG_LEVEL: "silent",
  ...overrides,
});

/** The mails of the proxied instance (reset links). */
const mailer = new MemoryMailer();

/** The token of the latest reset link mailed to `email`, waited for: the link leaves after the answer. */
async function resetTokenFor(email: string, after = mailer.outbox.length - 1): Promise<string> {
  let token: string | undefined;
  await until(async () => {
    const mail = mailer.outbox.slice(Math.max(0, after)).findLast((m) => m.to === email && /token=/.test(m.text));
    token = mail ? /token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1] : undefined;
    return token !== undefined;
  }, "the reset mail");
  return token as string;
}

async function until(check: () => Promise<boolean>, what: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not happen within ${ms} ms`);
}

describe.if(Boolean(backend.databaseUrl && backend.redisUrl))("a silent network, and writes cut halfway", () => {
  let pg: CuttableProxy;
  let redis: CuttableProxy;
  /** Postgres and Redis both through the proxies. */
  let proxied: AuthServer;
  /** Straight to both: another instance of the same deployment. */
  let direct: AuthServer;
  const healthy = async () => (await call(proxied, "GET", "/health")).status === 200;

  async function signUp(on: AuthServer, label: string) {
    const email = uniqueEmail(label);
    const res = await call(on, "POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(res.status).toBe(201);
    return { email, ...(res.body as { accessToken: string; refreshToken: string }) };
  }

  async function login(on: AuthServer, email: string, password = PASSWORD) {
    return call(on, "POST", "/auth/login", { body: { email, password } });
  }

  beforeAll(async () => {
    pg = new CuttableProxy(target(backend.databaseUrl as string, 5432));
    redis = new CuttableProxy(target(backend.redisUrl as string, 6379));
    const pgPort = pg.start();
    const redisPort = redis.start();
    proxied = await buildAuthServer(
      options({ DATABASE_URL: viaProxy(backend.databaseUrl as string, pgPort), REDIS_URL: viaProxy(backend.redisUrl as string, redisPort) }),
      { mailer },
    );
    direct = await buildAuthServer(options());
  }, 30_000);

  afterAll(async () => {
    pg?.restore();
    redis?.restore();
    await Promise.all([proxied?.close(), direct?.close()]);
    pg?.stop();
    redis?.stop();
  }, 20_000);

  test("Postgres silent: requests on pooled connections answer 503 UNAVAILABLE in time, and the server recovers by itself", async () => {
    const user = await signUp(proxied, "silent-db");
    // Warm several pooled connections, so the silence catches queries on connections that were fine a moment ago.
    await Promise.all(Array.from({ length: 5 }, () => call(proxied, "GET", "/auth/me", { token: user.accessToken })));
    pg.silence();
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, () => call(proxied, "GET", "/auth/me", { token: user.accessToken })));
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.body.code).toBe("UNAVAILABLE");
        expect(answer.ms).toBeLessThan(BACKEND_TIMEOUT_MS * 2);
      }
      const signIn = await login(proxied, user.email);
      expect(signIn.status).toBe(503);
      expect(signIn.ms).toBeLessThan(BACKEND_TIMEOUT_MS * 2 + 500);
      expect((await call(proxied, "GET", "/health")).body).toEqual({ status: "unavailable", db: "down", kv: "ok" });
    } finally {
      pg.restore();
    }
    await until(healthy, "recovery");
    expect((await call(proxied, "GET", "/auth/me", { token: user.accessToken })).status).toBe(200);
    expect((await login(proxied, user.email)).status).toBe(200);
  }, 40_000);

  test("Postgres silent: refreshes gathered behind a stuck rotation answer 503 in time too, and each token still works after", async () => {
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => signUp(proxied, `silent-refresh-${i}`)));
    const refresh = (refreshToken: string) => call(proxied, "POST", "/auth/refresh", { body: { refreshToken } });
    pg.silence();
    try {
      // The first rotation goes alone and hangs on the silent connection; the others arrive while it is in flight and
      // wait to go together. They must not wait for it to time out and then time out once more themselves.
      const first = refresh(users[0]!.refreshToken);
      await Bun.sleep(300);
      const behind = await Promise.all(users.slice(1).map((u) => refresh(u.refreshToken)));
      expect((await first).status).toBe(503);
      for (const answer of behind) {
        expect(answer.status).toBe(503);
        expect(answer.body.code).toBe("UNAVAILABLE");
        expect(answer.ms).toBeLessThan(BACKEND_TIMEOUT_MS + 400);
      }
    } finally {
      pg.restore();
    }
    await until(healthy, "recovery");
    // Each presented token still works: it did not rotate (or, had it, a retry within the grace window gets its successor).
    const after = await Promise.all(users.map((u) => refresh(u.refreshToken)));
    expect(after.map((a) => a.status)).toEqual(Array(users.length).fill(200));
  }, 40_000);

  test("Redis silent: 503 in time; a token logged out meanwhile on another instance is refused, never accepted; it recovers", async () => {
    const user = await signUp(proxied, "silent-kv");
    const bystander = await signUp(direct, "silent-kv-bystander");
    redis.silence();
    try {
      const signIn = await login(proxied, user.email);
      expect(signIn.status).toBe(503);
      expect(signIn.ms).toBeLessThan(BACKEND_TIMEOUT_MS * 2);
      // Another instance, still on Redis, ends the session meanwhile: the cut-off one cannot have heard it.
      expect((await call(direct, "POST", "/auth/logout", { token: user.accessToken })).status).toBe(204);
      // Once its channel is found silent (a ping unanswered for the deadline), the instance asks Postgres instead.
      await Bun.sleep(BACKEND_TIMEOUT_MS * 2.5);
      const me = await call(proxied, "GET", "/auth/me", { token: user.accessToken });
      expect(me.status).toBe(401);
      expect(me.body.code).toBe("SESSION_REVOKED");
      expect(me.ms).toBeLessThan(BACKEND_TIMEOUT_MS);
      // A session nobody ended still works: Postgres alone answers GET /auth/me.
      expect((await call(proxied, "GET", "/auth/me", { token: bystander.accessToken })).status).toBe(200);
    } finally {
      redis.restore();
    }
    await until(healthy, "recovery");
    const refused = await call(proxied, "GET", "/auth/me", { token: user.accessToken });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("SESSION_REVOKED");
    expect((await login(proxied, user.email)).status).toBe(200);
  }, 40_000);

  test("Redis silent: profiles changed meanwhile on another instance show in GET /auth/session, then and after the reconnect", async () => {
    const read = await signUp(proxied, "silent-copy");
    const unread = await signUp(proxied, "silent-copy-unread");
    // The cut-off instance keeps copies of both users, exact while it hears every change.
    for (const user of [read, unread]) expect((await call(proxied, "GET", "/auth/session", { token: user.accessToken })).body.user.firstName).toBeNull();
    redis.silence();
    try {
      for (const user of [read, unread]) {
        expect((await call(direct, "PATCH", "/auth/me", { token: user.accessToken, body: { firstName: "Noor" } })).status).toBe(200);
      }
      await Bun.sleep(BACKEND_TIMEOUT_MS * 2.5);
      // The announcements cannot have arrived: with the channel found silent, no copy over a second old answers.
      const during = await call(proxied, "GET", "/auth/session", { token: read.accessToken });
      expect(during.status).toBe(200);
      expect(during.body.user.firstName).toBe("Noor");
    } finally {
      redis.restore();
    }
    await until(async () => proxied.ctx.sessions.listening, "the channel back");
    // The copy made before the silence was exact then; the reconnect cannot know what it missed, so it keeps none.
    expect((await call(proxied, "GET", "/auth/session", { token: unread.accessToken })).body.user.firstName).toBe("Noor");
    expect((await call(proxied, "GET", "/auth/session", { token: read.accessToken })).body.user.firstName).toBe("Noor");
  }, 40_000);

  test("a password change cut at either of its writes changes nothing: the old password works, every other session lives", async () => {
    const user = await signUp(proxied, "cut-change");
    const other = (await login(proxied, user.email)).body as { accessToken: string };
    for (const statement of ['update "users" set', 'insert into "revocations"']) {
      pg.cutAt(statement);
      const change = await call(proxied, "POST", "/auth/password/change", {
        token: user.accessToken,
        body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
      });
      pg.restore();
      expect(change.status).toBe(503);
      await until(healthy, "recovery");
      expect((await login(proxied, user.email, NEW_PASSWORD)).status).toBe(401);
      expect((await login(proxied, user.email)).status).toBe(200);
      expect((await call(proxied, "GET", "/auth/me", { token: other.accessToken })).status).toBe(200);
      expect((await call(direct, "GET", "/auth/me", { token: other.accessToken })).status).toBe(200);
    }
    // Uncut, it all happens: the other session is refused everywhere, the caller's lives.
    const change = await call(proxied, "POST", "/auth/password/change", { token: user.accessToken, body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
    expect(change.status).toBe(204);
    expect((await call(direct, "GET", "/auth/me", { token: other.accessToken })).status).toBe(401);
    expect((await call(direct, "GET", "/auth/me", { token: user.accessToken })).status).toBe(200);
  }, 40_000);

  test("a password reset cut at any of its writes changes nothing: the link still works, the old password too, every session lives", async () => {
    const user = await signUp(proxied, "cut-reset");
    for (const statement of ['update "password_reset_tokens" set', 'update "users" set', 'update "sessions" set "revoked_at"', 'insert into "revocations"']) {
      const before = mailer.outbox.length;
      expect((await call(proxied, "POST", "/auth/password/forgot", { body: { email: user.email } })).status).toBe(202);
      const token = await resetTokenFor(user.email, before);
      pg.cutAt(statement);
      const reset = await call(proxied, "POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } });
      pg.restore();
      expect({ statement, status: reset.status }).toEqual({ statement, status: 503 });
      await until(healthy, "recovery");
      expect((await login(proxied, user.email)).status).toBe(200);
      for (const on of [proxied, direct]) expect((await call(on, "GET", "/auth/me", { token: user.accessToken })).status).toBe(200);
      // The link was not spent: it still sets a password (then the next round asks for a new one).
      if (statement === 'insert into "revocations"') {
        expect((await call(proxied, "POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } })).status).toBe(204);
        for (const on of [proxied, direct]) expect((await call(on, "GET", "/auth/me", { token: user.accessToken })).status).toBe(401);
      }
    }
  }, 60_000);

  test("a logout cut at its write leaves the session whole (token and refresh work); uncut, it ends both", async () => {
    const user = await signUp(proxied, "cut-logout");
    pg.cutAt('update "sessions" set "revoked_at"');
    const cut = await call(proxied, "POST", "/auth/logout", { token: user.accessToken });
    pg.restore();
    expect(cut.status).toBe(503);
    await until(healthy, "recovery");
    for (const on of [proxied, direct]) expect((await call(on, "GET", "/auth/me", { token: user.accessToken })).status).toBe(200);
    const refreshed = await call(proxied, "POST", "/auth/refresh", { body: { refreshToken: user.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect((await call(direct, "GET", "/auth/me", { token: refreshed.body.accessToken })).status).toBe(200);

    expect((await call(proxied, "POST", "/auth/logout", { token: refreshed.body.accessToken })).status).toBe(204);
    for (const on of [proxied, direct]) expect((await call(on, "GET", "/auth/me", { token: refreshed.body.accessToken })).status).toBe(401);
    expect((await call(direct, "POST", "/auth/refresh", { body: { refreshToken: refreshed.body.refreshToken } })).status).toBe(401);
  }, 40_000);

  test("Redis losing every key (a restart without persistence) revives no token, on instances started afterwards too", async () => {
    const user = await signUp(direct, "flushed");
    expect((await call(direct, "POST", "/auth/logout", { token: user.accessToken })).status).toBe(204);
    // FLUSHALL would wipe the keys of everyone sharing this Redis: every key of this deployment goes instead.
    const admin = new Redis(backend.redisUrl as string);
    try {
      const keys = await admin.keys(`${PREFIX}*`);
      if (keys.length) await admin.del(...keys);
      expect(await admin.keys(`${PREFIX}*`)).toEqual([]);
    } finally {
      admin.disconnect();
    }
    const later = await buildAuthServer(options());
    try {
      const res = await call(later, "GET", "/auth/me", { token: user.accessToken });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("SESSION_REVOKED");
    } finally {
      await later.close();
    }
    expect((await call(direct, "GET", "/auth/me", { token: user.accessToken })).status).toBe(401);
  }, 30_000);
});
