import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { lockDataDir } from "./data-dir-lock";
import * as schema from "./schema";

/**
 * The core's tables. Plugins' tables live in their folders (drizzle-kit reads them all for migrations); queries name
 * their tables, and no relational query (`db.query.*`) needs them in the handle's schema.
 */
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

/**
 * The compiled binary carries the migrations as `--asset ./drizzle` (the `build` script in package.json), readable with node:fs
 * under its embedded root; from source they are the repository's folder. Both go through the same migrate().
 */
export const migrationsFolder = Bun.isStandaloneExecutable ? `${import.meta.dir}/drizzle` : new URL("../../drizzle", import.meta.url).pathname;

export async function openDatabase(opts: { url?: string; dataDir: string; timeoutMs: number }): Promise<Database> {
  // Each driver is loaded only when used: PGlite weighs tens of MB that a Postgres deployment should not carry, and
  // postgres-js a few that the embedded default does not need.
  if (opts.url) return (await import("./postgres")).openPostgres(opts.url, opts.timeoutMs);
  const { createPglite } = await import("./pglite");
  // One process per folder, taken before PGlite touches it; released once the database is closed.
  const release = lockDataDir(opts.dataDir);
  try {
    const database = await createPglite(opts.dataDir, opts.timeoutMs);
    return {
      ...database,
      async close() {
        try {
          await database.close();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

export { schema };
