// Loaded only inside a compiled binary (see pgliteExtensions): this path exists in the repository the binary is built
// from, not in an installed package, and the bundle is not in PGlite's exports map. Imported as a file, it is embedded.
import pgTrgmBundlePath from "../../node_modules/@electric-sql/pglite/dist/pg_trgm.tar.gz" with { type: "file" };

export { pgTrgmBundlePath };
