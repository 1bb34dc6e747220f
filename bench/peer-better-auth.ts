/**
 * The peer: Better Auth mounted in Elysia on the same Postgres (its own tables: user, session, account,
 * verification), rate limiting off, default session settings, one user signed up. Prints `ready <port>` once
 * it listens.
 *
 * BENCH_COOKIE_CACHE=1 turns on Better Auth's cookie cache (`session.cookieCache`, its default "compact" strategy:
 * a signed copy of the session in a second cookie, read instead of the database while it is fresh).
 * BENCH_SESSIONS=N with BENCH_COOKIES_FILE=path seeds N sessions of the user (rows inserted in bulk, tagged with
 * this peer's kind, the previous run's removed) and writes one Cookie header value a line: the signed session token,
 * and with the cookie cache the `session_data` cookie Better Auth itself set for that session.
 */
import { createHmac, randomBytes } from "node:crypto";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { Elysia } from "elysia";
import { Pool } from "pg";
import { PEER_USER } from "./peer-better-auth-user";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const port = Number(process.env.PORT ?? 3101);
const cookieCache = process.env.BENCH_COOKIE_CACHE === "1";
const secret = "bench-only-secret-0123456789abcdef0123456789abcdef";
const pool = new Pool({ connectionString: databaseUrl, max: 10 });

const auth = betterAuth({
  database: pool,
  secret,
  baseURL: `http://127.0.0.1:${port}`,
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { disabled: true },
  ...(cookieCache ? { session: { cookieCache: { enabled: true, maxAge: 10 * 60 } } } : {}),
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

// The sign-up scenario's users of earlier runs go (their sessions and accounts with them).
await pool.query(`delete from "user" where email like 'reg-%@example.com'`);
// Sign the user up once; a second run finds it already there.
await auth.api.signUpEmail({ body: PEER_USER }).catch(() => undefined);

const count = Number(process.env.BENCH_SESSIONS ?? 0);
const cookiesFile = process.env.BENCH_COOKIES_FILE;
if (count > 0 && cookiesFile) {
  const tag = `bench-${cookieCache ? "cookie-cache" : "plain"}`;
  const { rows } = await pool.query<{ id: string }>(`select id from "user" where email = $1`, [PEER_USER.email]);
  const userId = rows[0]?.id;
  if (!userId) throw new Error("peer user missing");
  await pool.query(`delete from "session" where "userId" = $1 and "userAgent" = $2`, [userId, tag]);
  const tokens = Array.from({ length: count }, () => randomBytes(24).toString("base64url"));
  const now = new Date();
  const expiresAt = new Date(now.getTime() + 7 * 86_400_000);
  for (let i = 0; i < count; i += 1000) {
    const batch = tokens.slice(i, i + 1000);
    const values: unknown[] = [];
    const rowsSql = batch.map((token, j) => {
      values.push(randomBytes(16).toString("hex"), expiresAt, token, now, now, "127.0.0.1", tag, userId);
      const b = j * 8;
      return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7},$${b + 8})`;
    });
    await pool.query(`insert into "session" (id, "expiresAt", token, "createdAt", "updatedAt", "ipAddress", "userAgent", "userId") values ${rowsSql.join(",")}`, values);
  }
  // better-call's signed cookie: `<value>.<base64 HMAC-SHA256 of value>`, URI-encoded.
  const signed = (token: string) => encodeURIComponent(`${token}.${createHmac("sha256", secret).update(token).digest("base64")}`);
  const lines: string[] = [];
  for (let i = 0; i < count; i += 200) {
    const batch = tokens.slice(i, i + 200).map(async (token) => {
      const cookie = `better-auth.session_token=${signed(token)}`;
      if (!cookieCache) return cookie;
      // Better Auth's own get-session sets the cache cookie for the session it read from the database.
      const { headers, response } = await auth.api.getSession({ headers: new Headers({ cookie }), returnHeaders: true });
      if (!response) throw new Error("seeded session not found");
      const data = /better-auth\.session_data=([^;]+)/.exec(headers.get("set-cookie") ?? "")?.[1];
      if (!data) throw new Error("no session_data cookie set");
      return `${cookie}; better-auth.session_data=${data}`;
    });
    lines.push(...(await Promise.all(batch)));
  }
  await Bun.write(cookiesFile, lines.join("\n"));
}

new Elysia().mount(auth.handler).listen({ port, hostname: "127.0.0.1" });
console.log(`ready ${port}`);
