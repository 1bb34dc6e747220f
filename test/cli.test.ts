import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { eq } from "drizzle-orm";
import pkg from "../package.json" with { type: "json" };
import { openPglite, pgliteExtensions } from "../src/db/pglite";
import { users } from "../src/db/schema";

// Issue 18 (the CLI) and issue 22 (`users create-admin EMAIL` makes the first admin): commands of the same entry point,
// run as a real process on the embedded database; none of them starts a server.

const ENTRY = join(import.meta.dir, "..", "src", "index.ts");
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function run(args: string[], env: Record<string, string> = {}) {
  const child = Bun.spawn(["bun", "run", ENTRY, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), LOG_LEVEL: "warn", PORT: "1", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { code: await child.exited, stdout, stderr };
}

describe("the command line", () => {
  test("--help and --version answer and exit 0; an unknown command exits 2 with the usage, serving nothing", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("users create-admin EMAIL");
    const version = await run(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const unknown = await run(["--hepl"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown command: --hepl");
    expect(unknown.stderr).toContain("Usage:");
  });

  test("healthcheck exits 1 when nothing answers on PORT", async () => {
    expect((await run(["healthcheck"], { PORT: "1" })).code).toBe(1);
  });

  test("users create-admin EMAIL makes the first admin on the embedded database; without an email it exits 2", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "auth-cli-"));
    dirs.push(dataDir);
    expect((await run(["users", "create-admin"], { DATA_DIR: dataDir })).code).toBe(2);
    const made = await run(["users", "create-admin", "First.Admin@Example.com"], { DATA_DIR: dataDir, MAIL_FROM: "Auth <no-reply@localhost>" });
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    const database = openPglite(await PGlite.create(dataDir, { extensions: pgliteExtensions }));
    try {
      const [row] = await database.db.select({ roles: users.roles }).from(users).where(eq(users.email, "first.admin@example.com"));
      expect(row?.roles).toContain("admin");
    } finally {
      await database.close();
    }
  }, 120_000);
});
