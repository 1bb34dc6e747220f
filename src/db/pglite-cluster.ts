/// <reference path="./pglite-assets.d.ts" />
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import clusterPath from "./pglite-cluster.tar.br" with { type: "file" };

/**
 * The empty cluster PGlite's initdb makes, as a brotli-compressed tar (1.3 MB): `bun run db:cluster` writes it again
 * with the installed PGlite, whose version package.json pins (test/embedded-start.test.ts fails when they differ).
 *
 * Why: initdb runs in two more WebAssembly instances beside the server's (PGlite's helper and initdb itself) and
 * peaks near 1 GB, on the very first start of `bun run start`. Seeded from this file, a first start costs what any
 * later one does.
 */
export const CLUSTER_FILE = clusterPath;

const BLOCK = 512;

const text = (header: Uint8Array, start: number, length: number) => {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
};
const octal = (header: Uint8Array, start: number, length: number) => Number.parseInt(text(header, start, length).trim() || "0", 8);

/**
 * Writes the empty cluster into `dataDir` unless it holds one already (PG_VERSION), and answers whether it did. The
 * archive is read into memory (40 MB) before PGlite starts, so that peak never meets PGlite's. PG_VERSION is written
 * last: a start cut short midway leaves a folder that the next start seeds again.
 */
export async function seedCluster(dataDir: string, archive: string = CLUSTER_FILE): Promise<boolean> {
  const root = resolve(dataDir);
  if (existsSync(join(root, "PG_VERSION"))) return false;
  const tar = brotliDecompressSync(await Bun.file(archive).bytes());
  let version: Uint8Array | undefined;
  for (let offset = 0; offset + BLOCK <= tar.length; ) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const prefix = text(header, 345, 155);
    const name = `${prefix ? `${prefix}/` : ""}${text(header, 0, 100)}`;
    const size = octal(header, 124, 12);
    const mode = octal(header, 100, 8) & 0o777;
    const type = String.fromCharCode(header[156] ?? 0);
    const body = tar.subarray(offset + BLOCK, offset + BLOCK + size);
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    const path = resolve(root, `.${name.startsWith("/") ? name : `/${name}`}`);
    // Our own archive, but a name leading out of the folder is refused all the same.
    if (relative(root, path).startsWith("..")) throw new Error(`the embedded cluster names a path outside DATA_DIR: ${name}`);
    if (type === "5") mkdirSync(path, { recursive: true, mode: mode || 0o700 });
    else if (type === "0" || type === "\0") {
      if (path === join(root, "PG_VERSION")) version = body;
      else {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        writeFileSync(path, body, { mode: mode || 0o600 });
      }
    } else throw new Error(`the embedded cluster holds an entry of type ${type}: ${name}`);
  }
  if (!version) throw new Error("the embedded cluster has no PG_VERSION");
  writeFileSync(join(root, "PG_VERSION"), version, { mode: 0o600 });
  return true;
}

/** Makes the archive anew with the installed PGlite's initdb (`bun run db:cluster`). */
export async function writeCluster(to: string = CLUSTER_FILE): Promise<number> {
  const { PGlite } = await import("@electric-sql/pglite");
  const pg = await PGlite.create();
  const tar = new Uint8Array(await (await pg.dumpDataDir("none")).arrayBuffer());
  await pg.close();
  const packed = brotliCompressSync(tar, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24 } });
  await Bun.write(to, packed);
  return packed.length;
}

if (import.meta.main) {
  const bytes = await writeCluster();
  console.log(`wrote ${CLUSTER_FILE} (${bytes} bytes)`);
}
