/// <reference path="./pglite-assets.d.ts" />
import { PGlite } from "@electric-sql/pglite";
import initdbWasmPath from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteDataPath from "@electric-sql/pglite/pglite.data" with { type: "file" };
import pgliteWasmPath from "@electric-sql/pglite/pglite.wasm" with { type: "file" };
import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { pg_trgm } from "@electric-sql/pglite/contrib/pg_trgm";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { type Database, type Db, migrationsFolder, schema } from "./index";
import { seedCluster } from "./pglite-cluster";
import { gatePglite } from "./pglite-gate";

/** `timeoutMs` bounds how long a query may wait for the one connection (BACKEND_TIMEOUT_MS): then it is a 503. */
export function openPglite(pglite: PGlite, timeoutMs = 3000): Database {
  const client = gatePglite(pglite, timeoutMs);
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    async migrate() {
      // One process owns an embedded database, so there is nobody to race.
      await migratePglite(drizzlePglite(client, { schema }), { migrationsFolder }).catch((error: unknown) => {
        const missing = /extension "pg_trgm" is not available/.test(`${(error as Error)?.message} ${((error as Error)?.cause as Error)?.message}`);
        throw missing ? new Error("PGlite was created without pg_trgm: pass { extensions: pgliteExtensions } (src/db/pglite.ts) to PGlite.create") : error;
      });
      Bun.gc(true);
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
 * The extensions every embedded database loads: the migrations create pg_trgm (the admin user search), and a data
 * folder made with it opens only with it. Pass these to every `PGlite.create`.
 */
export const pgliteExtensions = {
  pg_trgm: Bun.isStandaloneExecutable ? { name: "pg_trgm", setup: async () => ({ bundlePath: pathToFileURL(await embeddedBundleCopy()) }) } : pg_trgm,
};

/**
 * PGlite streams an extension bundle with node:fs, which cannot stream a file embedded in a compiled binary (Bun.file
 * can read it): there it is copied to the temporary directory, under a name its content fixes (the bundler's hash),
 * written aside and renamed so a process starting meanwhile never reads half of it.
 */
async function embeddedBundleCopy(): Promise<string> {
  const { pgTrgmBundlePath } = await import("./pglite-embedded");
  const copy = join(tmpdir(), `auth-server-${basename(pgTrgmBundlePath)}`);
  const embedded = Bun.file(pgTrgmBundlePath);
  if (Bun.file(copy).size !== embedded.size) {
    const partial = `${copy}.${process.pid}`;
    await Bun.write(partial, embedded);
    await rename(partial, copy);
  }
  return copy;
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

/**
 * Postgres's memory settings for the embedded database, sized for what it serves (one process, one connection): its
 * defaults (128 MB of shared buffers, 64 MB for index builds) are a server's, and PGlite touches every page of them.
 */
export const PGLITE_MEMORY_SETTINGS = ["shared_buffers=8MB", "maintenance_work_mem=16MB", "temp_buffers=2MB", "wal_buffers=1MB"];

/**
 * Opens the embedded database in `dataDir`, seeding an empty folder with the cluster initdb would make (see
 * pglite-cluster.ts: initdb itself peaks near 1 GB).
 */
export async function createPglite(dataDir: string, timeoutMs: number): Promise<Database> {
  await seedCluster(dataDir);
  const pglite = await PGlite.create(dataDir, {
    extensions: pgliteExtensions,
    startParams: [...PGlite.defaultStartParams, ...PGLITE_MEMORY_SETTINGS.flatMap((setting) => ["-c", setting])],
    ...(Bun.isStandaloneExecutable ? await embeddedPgliteAssets() : {}),
  });
  // Starting left tens of MB of garbage (the wasm bytes, the file-system bundle): freed now, before the migrations
  // and the server add their own, so the peak of a start is not their sum.
  Bun.gc(true);
  return openPglite(pglite, timeoutMs);
}
