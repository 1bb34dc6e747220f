import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { AuthServerOptions } from "../../src/config";
import type { Database } from "../../src/db";
import { openPostgres } from "../../src/db/postgres";
import { openPglite, pgliteExtensions } from "../../src/db/pglite";
import { MemoryStore, prefixed } from "../../src/kv";
import { RedisStore } from "../../src/kv/redis";
import type { KeyValueStore } from "../../src/kv";
import { type MailMessage, MemoryMailer } from "../../src/mail";
import { type AuthServer, type AuthServerPorts, buildAuthServer } from "../../src/server";

/** Backends follow the environment: PGlite + memory by default, Postgres + Redis when DATABASE_URL and REDIS_URL are set. */
export const backend = {
  databaseUrl: process.env.DATABASE_URL || undefined,
  redisUrl: process.env.REDIS_URL || undefined,
};

let template: Promise<Blob> | undefined;

/** Migrating PGlite takes seconds; do it once per process and clone the result for each server. */
async function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const pg = await PGlite.create({ extensions: pgliteExtensions });
    const db = openPglite(pg);
    await db.migrate();
    const dump = await pg.dumpDataDir("none");
    await pg.close();
    return dump;
  })();
  return template;
}

export async function testDatabase(): Promise<Database> {
  if (backend.databaseUrl) return openPostgres(backend.databaseUrl, 3000);
  return openPglite(await PGlite.create({ loadDataDir: await pgliteTemplate(), extensions: pgliteExtensions }));
}

/**
 * A database no other test shares, for tests whose rows the workers or key rings of other servers must not touch (the
 * mail outbox, sealing keys, signing keys): a fresh PGlite as usual, or on Postgres a database made for the test,
 * migrated, and dropped by its `close()`.
 */
export async function isolatedDatabase(): Promise<Database> {
  if (!backend.databaseUrl) return testDatabase();
  const name = `test_${crypto.randomUUID().replaceAll("-", "")}`;
  const admin = openPostgres(backend.databaseUrl, 3000);
  await admin.db.execute(sql.raw(`create database ${name}`));
  const url = new URL(backend.databaseUrl);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), 3000);
  await database.migrate();
  let closing: Promise<void> | undefined;
  const close = async () => {
    await database.close();
    await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
    await admin.close();
  };
  return {
    ...database,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}

export function testStore(): KeyValueStore {
  const prefix = `test:${crypto.randomUUID()}:`;
  return backend.redisUrl ? prefixed(new RedisStore(backend.redisUrl, 3000), prefix) : new MemoryStore();
}

/** Limits high enough that only the tests about rate limits meet them. */
const RELAXED_LIMITS: AuthServerOptions = {
  RATE_LIMIT_LOGIN_IP: "10000/60",
  RATE_LIMIT_LOGIN_EMAIL: "10000/60",
  RATE_LIMIT_CODE_EMAIL: "10000/60",
  RATE_LIMIT_EMAIL_CHECK_IP: "10000/60",
  RATE_LIMIT_REFRESH_SESSION: "10000/60",
  RATE_LIMIT_ANONYMOUS_IP: "10000/60",
  RATE_LIMIT_SIGNUP_IP: "10000/60",
  RATE_LIMIT_MAIL_IP: "10000/60",
  RATE_LIMIT_MAIL_RECIPIENT: "10000/60",
  // Tests run many hashes; the production default is 19 MiB, t=2.
  PASSWORD_HASH_MEMORY_KIB: 4096,
  PASSWORD_HASH_TIME_COST: 1,
  LOG_LEVEL: "silent",
};

export type TestResponse<T = any> = { status: number; body: T; headers: Headers; text: string };

export type RequestOptions = {
  body?: unknown;
  form?: Record<string, string>;
  token?: string;
  /** A header given as undefined is not sent. */
  headers?: Record<string, string | undefined>;
};

export type TestServer = AuthServer & {
  mailer: MemoryMailer;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<TestResponse<T>>;
  /**
   * The first mail to `to` whose text matches, among those sent after the first `after`, waited for: some mails
   * leave after the answer (a reset link).
   */
  mailTo(to: string, matching: RegExp, after?: number): Promise<MailMessage>;
  /**
   * A browser of its own: `request` as above, but it keeps the cookies the server sets (by name and path, dropping
   * expired ones) and sends back those whose path covers the request, as a browser does. Two browsers share nothing.
   */
  browser(): TestBrowser;
};

export type TestBrowser = {
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<TestResponse<T>>;
  /** The cookies this browser holds, by name. */
  cookies(): Map<string, { value: string; path: string }>;
};

/** Cookie jar for one host, just good enough for the server under test: name + path, Max-Age=0 deletes. */
function cookieJar() {
  const jar = new Map<string, { name: string; value: string; path: string }>();
  return {
    jar,
    store(headers: Headers) {
      for (const line of headers.getSetCookie()) {
        const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
        const eq = pair.indexOf("=");
        if (eq <= 0) continue;
        const name = pair.slice(0, eq);
        const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) || "/";
        const key = `${name};${path}`;
        if (attributes.some((a) => /^max-age=0$/i.test(a))) jar.delete(key);
        else jar.set(key, { name, value: pair.slice(eq + 1), path });
      }
    },
    header(requestPath: string): string | undefined {
      const pathname = requestPath.split("?")[0] ?? "/";
      const matching = [...jar.values()].filter(
        (c) => pathname === c.path || pathname.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`),
      );
      return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join("; ") : undefined;
    },
  };
}

/** A server on fresh backends with an in-memory outbox; `request` goes through `app.handle` like real HTTP. */
export async function createTestServer(options: AuthServerOptions = {}, ports: AuthServerPorts = {}): Promise<TestServer> {
  // A test's own MemoryMailer (one that can hold or fail mails) is the one `mailer` and `mailTo` read.
  const mailer = ports.mailer instanceof MemoryMailer ? ports.mailer : new MemoryMailer();
  // `mailer: undefined` asks for the mailer the settings name: with SMTP its outbox must be this server's alone.
  const fromSettings = "mailer" in ports && ports.mailer === undefined;
  const server = await buildAuthServer(
    { ...RELAXED_LIMITS, ...options },
    { database: await (fromSettings ? isolatedDatabase() : testDatabase()), kv: testStore(), mailer, ...ports },
  );
  const close = async () => {
    await server.close();
    await Promise.allSettled([server.ctx.database.close(), server.ctx.kv.close()]);
  };
  return {
    ...server,
    mailer,
    close,
    async mailTo(to, matching, after = 0) {
      const deadline = Date.now() + 3000;
      for (;;) {
        const mail = mailer.outbox.slice(after).find((m) => m.to === to && matching.test(m.text));
        if (mail) return mail;
        if (Date.now() > deadline) throw new Error(`no mail to ${to} matching ${matching}`);
        await Bun.sleep(5);
      }
    },
    browser(): TestBrowser {
      const jar = cookieJar();
      return {
        async request<T>(method: string, path: string, opts: RequestOptions = {}) {
          const cookie = jar.header(path);
          const res = await request<T>(method, path, { ...opts, headers: { ...(cookie ? { cookie } : {}), ...opts.headers } });
          jar.store(res.headers);
          return res;
        },
        cookies: () => new Map([...jar.jar.values()].map((c) => [c.name, { value: c.value, path: c.path }])),
      };
    },
    request: (method, path, opts) => request(method, path, opts),
  };

  async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<TestResponse<T>> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) if (value !== undefined) headers[name] = value;
    let body: string | undefined;
    if (opts.form) {
      headers["content-type"] ??= "application/x-www-form-urlencoded";
      body = new URLSearchParams(opts.form).toString();
    } else if (opts.body !== undefined) {
      headers["content-type"] ??= "application/json";
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const res = await server.app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, body: parsed as any, headers: res.headers, text };
  }
}

export const uniqueEmail = (label = "user") => `${label}-${crypto.randomUUID().slice(0, 12)}@example.com`;
