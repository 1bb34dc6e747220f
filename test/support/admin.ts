import postgres from "postgres";
import type { Database } from "../../src/db";
import { openPostgres } from "../../src/db/postgres";
import type { UserRow } from "../../src/db/schema";
import { backend, type TestServer, testDatabase, uniqueEmail } from "./server";
import { createSignedInUser } from "./users";

export const PASSWORD = "correct horse battery staple";

/** A signed-in holder of the stored `admin` role. */
export async function newAdmin(server: TestServer, fields: Partial<UserRow> = {}) {
  const { user, tokens } = await createSignedInUser(server, { roles: ["user", "admin"], ...fields });
  return { user, token: tokens.accessToken, refreshToken: tokens.refreshToken };
}

/** A user registered over HTTP with a password, signed in. */
export async function registerUser(server: TestServer, fields: Record<string, string> = {}) {
  const email = fields.email ?? uniqueEmail("member");
  const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD, ...fields } });
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${res.text}`);
  return { id: res.body.user.id as string, email, token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
}

export function claimsOf(accessToken: string): Record<string, unknown> {
  const payload = accessToken.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

/**
 * A database nobody else uses, for tests that count every admin there is: a new Postgres database on the backend
 * pass (dropped by `drop`), a fresh PGlite otherwise.
 */
export async function isolatedDatabase(): Promise<{ database: Database; drop(): Promise<void> }> {
  if (!backend.databaseUrl) {
    const database = await testDatabase();
    return { database, drop: () => database.close() };
  }
  const name = `test_admin_iso_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const root = postgres(backend.databaseUrl, { max: 1, onnotice: () => {} });
  await root.unsafe(`create database ${name}`);
  const url = new URL(backend.databaseUrl);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), 3000);
  return {
    database,
    async drop() {
      await database.close();
      await root.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await root.end({ timeout: 5 });
    },
  };
}
