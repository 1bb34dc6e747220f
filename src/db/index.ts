import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import initdbWasmPath from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteDataPath from "@electric-sql/pglite/pglite.data" with { type: "file" };
import pgliteWasmPath from "@electric-sql/pglite/pglite.wasm" with { type: "file" };
import * as schema from "./all-schema";

export type Schema = typeof schema;
/** One handle type for both drivers. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export type Database = {
  db: Db;
  kind: "postgres" | "pglite";
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

/** Arbitrary but fixed: every instance of this server takes the same lock before migrating. */
const MIGRATION_LOCK_ID = 7_202_611;

/**
 * The compiled binary carries the migrations as `--asset ./drizzle` (the `build` script in package.json), readable with node:fs
 * under its embedded root; from source they are the repository's folder. Both go through the same migrate().
 */
export const migrationsFolder = Bun.isStandaloneExecutable ? `${import.meta.dir}/drizzle` : new URL("../../drizzle", import.meta.url).pathname;

export function openPostgres(url: string, timeoutMs: number): Database {
  const client = postgres(url, {
    max: 10,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    idle_timeout: 30,
    onnotice: () => {},
    connection: { statement_timeout: Math.max(timeoutMs, 1000) },
  });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "postgres",
    async migrate() {
      // A session-level lock needs one connection for lock, migration and unlock; drizzle cannot run on a reserved
      // connection (no `options`, no `begin`), so a one-connection client of its own does it.
      const single = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)) });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
        await migratePostgres(drizzlePostgres(single, { schema }), { migrationsFolder });
      } finally {
        await single`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.catch(() => {});
        await single.end({ timeout: 5 });
      }
    },
    async ping() {
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export function openPglite(client: PGlite): Database {
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    async migrate() {
      // One process owns an embedded database, so there is nobody to race.
      await migratePglite(drizzlePglite(client, { schema }), { migrationsFolder });
    },
    async ping() {
      await db.execute(sql`select 1`);
    },
    async close() {
      if (!client.closed) await client.close();
    },
  };
}

/**
 * PGlite finds its wasm and file-system bundle next to its own module, which a compiled binary does not have;
 * there they are embedded (imported as files) and handed over instead.
 */
async function embeddedPgliteAssets() {
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
    Bun.file(pgliteWasmPath).arrayBuffer().then((bytes) => WebAssembly.compile(bytes)),
    Bun.file(initdbWasmPath).arrayBuffer().then((bytes) => WebAssembly.compile(bytes)),
  ]);
  return { pgliteWasmModule, initdbWasmModule, fsBundle: Bun.file(pgliteDataPath) };
}

export async function openDatabase(opts: { url?: string; dataDir: string; timeoutMs: number }): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.timeoutMs);
  const client = await PGlite.create(opts.dataDir, Bun.isStandaloneExecutable ? await embeddedPgliteAssets() : {});
  return openPglite(client);
}

export { schema };
