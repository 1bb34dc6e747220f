import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
// Not in PGlite's exports map, so by path from the repository; a compiled binary embeds the file. Loaded only there:
// installed as a package, this path does not exist (node_modules is the host app's).
import pgTrgmBundlePath from "../../node_modules/@electric-sql/pglite/dist/pg_trgm.tar.gz" with { type: "file" };

/**
 * pg_trgm for PGlite inside a compiled binary, which has no node_modules to find the extension's bundle in. PGlite
 * reads a bundle with a node:fs stream, which cannot open a file embedded in the binary, so it gets a copy on disk
 * (written under a temporary name and renamed, so processes starting together never read a half-written one).
 */
export const embeddedPgTrgm = {
  name: "pg_trgm",
  setup: async () => {
    const embedded = Bun.file(pgTrgmBundlePath);
    const copy = join(tmpdir(), `auth-server-pg_trgm-${embedded.size}.tar.gz`);
    if (!(await Bun.file(copy).exists())) {
      const partial = `${copy}.${process.pid}.partial`;
      await Bun.write(partial, embedded);
      await rename(partial, copy);
    }
    return { bundlePath: pathToFileURL(copy) };
  },
};
