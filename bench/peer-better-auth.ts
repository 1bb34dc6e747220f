/**
 * The peer: Better Auth mounted in Elysia on the same Postgres (its own tables: user, session, account,
 * verification), rate limiting off, default session settings, one user signed up. Prints `ready <port>` once
 * it listens.
 */
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { Elysia } from "elysia";
import { Pool } from "pg";
import { PEER_USER } from "./peer-better-auth-user";

const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const port = Number(process.env.PORT ?? 3101);

const auth = betterAuth({
  database: new Pool({ connectionString: databaseUrl, max: 10 }),
  secret: "bench-only-secret-0123456789abcdef0123456789abcdef",
  baseURL: `http://127.0.0.1:${port}`,
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { disabled: true },
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

// Sign the user up once; a second run finds it already there.
await auth.api.signUpEmail({ body: PEER_USER }).catch(() => undefined);

new Elysia().mount(auth.handler).listen({ port, hostname: "127.0.0.1" });
console.log(`ready ${port}`);
