import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { openPglite, pgliteExtensions } from "../src/db/pglite";
import { seedCluster } from "../src/db/pglite-cluster";

// Issue 18 (first start on the embedded database): an empty DATA_DIR is seeded with the cluster initdb would make,
// instead of running initdb (~1 GB peak) on the first `bun run start`. bench/first-start.ts measures the memory.

const made: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), "auth-embedded-start-"));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const controlOf = async (pg: PGlite) =>
  (await pg.query<{ catalog_version_no: number; pg_control_version: number }>("select catalog_version_no, pg_control_version from pg_control_system()")).rows[0];
const versionOf = async (pg: PGlite) => (await pg.query<{ server_version: string }>("show server_version")).rows[0]?.server_version;

/** A brotli tar of the given entries (name, body), as `bun run db:cluster` writes one. */
function archive(entries: Array<{ name: string; body?: string; type?: "0" | "5" }>): string {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const body = new TextEncoder().encode(entry.body ?? "");
    const header = new Uint8Array(512);
    header.set(new TextEncoder().encode(entry.name), 0);
    header.set(new TextEncoder().encode("0000600\0"), 100);
    header.set(new TextEncoder().encode(`${body.length.toString(8).padStart(11, "0")}\0`), 124);
    header[156] = (entry.type ?? "0").charCodeAt(0);
    header.set(new TextEncoder().encode("ustar\0"), 257);
    blocks.push(header, body, new Uint8Array((512 - (body.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const path = join(folder(), "cluster.tar.br");
  writeFileSync(path, brotliCompressSync(Buffer.concat(blocks)));
  return path;
}

describe("the embedded cluster a first start seeds", () => {
  test("is what the installed PGlite's initdb makes: same server and catalog version, and the migrations apply", async () => {
    const dir = folder();
    expect(await seedCluster(dir)).toBe(true);
    expect(readFileSync(join(dir, "PG_VERSION"), "utf8").trim()).toMatch(/^\d+$/);
    const seeded = await PGlite.create(dir, { extensions: pgliteExtensions });
    const fresh = await PGlite.create({ extensions: pgliteExtensions });
    try {
      expect(await controlOf(seeded)).toEqual(await controlOf(fresh));
      expect(await versionOf(seeded)).toBe(await versionOf(fresh));
      const database = openPglite(seeded);
      await database.migrate();
      const tables = await database.db.execute(sql`select count(*)::int as n from information_schema.tables where table_name = 'users'`);
      expect((tables as unknown as { rows: Array<{ n: number }> }).rows[0]?.n).toBe(1);
    } finally {
      await seeded.close();
      await fresh.close();
    }
  }, 60_000);

  test("a folder that holds a database is left alone", async () => {
    const dir = folder();
    expect(await seedCluster(dir)).toBe(true);
    writeFileSync(join(dir, "marker"), "mine");
    const before = readFileSync(join(dir, "global", "pg_control"));
    expect(await seedCluster(dir)).toBe(false);
    expect(readFileSync(join(dir, "marker"), "utf8")).toBe("mine");
    expect(readFileSync(join(dir, "global", "pg_control")).equals(before)).toBe(true);
  });

  test("a seed cut short (files but no PG_VERSION) is seeded again on the next start, and opens", async () => {
    const dir = folder();
    mkdirSync(join(dir, "base", "1"), { recursive: true });
    writeFileSync(join(dir, "base", "1", "1255"), "half a file");
    expect(await seedCluster(dir)).toBe(true);
    const pg = await PGlite.create(dir, { extensions: pgliteExtensions });
    try {
      expect((await pg.query<{ one: number }>("select 1 as one")).rows[0]?.one).toBe(1);
    } finally {
      await pg.close();
    }
  }, 60_000);

  test("an archive naming a path outside the folder is refused, and nothing is written there", async () => {
    const dir = folder();
    const outside = join(dir, "..", `escaped-${crypto.randomUUID()}`);
    const bad = archive([{ name: "base", type: "5" }, { name: `../${outside.split("/").pop()}`, body: "x" }, { name: "PG_VERSION", body: "17\n" }]);
    const target = join(dir, "data");
    await expect(seedCluster(target, bad)).rejects.toThrow(/outside DATA_DIR/);
    expect(existsSync(outside)).toBe(false);
    // Refused before PG_VERSION: the next start seeds again instead of opening half a cluster.
    expect(existsSync(join(target, "PG_VERSION"))).toBe(false);
  });
});
