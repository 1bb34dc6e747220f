import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { eq } from "drizzle-orm";
import pkg from "../package.json" with { type: "json" };
import { openPglite, pgliteExtensions } from "../src/db/pglite";
import { totpSecrets } from "../plugins/mfa/schema";
import { decrypt, encrypt, keyFromSecret } from "../src/crypto";
import { serverKeys, users } from "../src/db/schema";

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

describe("keys", () => {
  const OLD = "an-old-deployment-key-of-32-chars-x";
  const NEW = "a-new-deployment-key-of-32-chars-yy";

  test("keys rotate publishes a new signing key and retires the one signing now; keys reencrypt moves sealed rows to the first key", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "auth-keys-"));
    dirs.push(dataDir);
    expect((await run(["migrate"], { DATA_DIR: dataDir })).code).toBe(0);
    const first = await run(["keys", "rotate"], { DATA_DIR: dataDir });
    expect(first.code).toBe(0);
    const made = /new signing key (\S+):/.exec(first.stdout)?.[1];
    expect(made).toBeString();
    const second = await run(["keys", "rotate"], { DATA_DIR: dataDir });
    expect(second.code).toBe(0);
    expect((await run(["keys", "rotate"], { DATA_DIR: dataDir, JWT_ALG: "HS256", JWT_SECRET: "x".repeat(32) })).code).toBe(1);

    // A TOTP secret sealed with the old key, as a server with ENCRYPTION_KEY=OLD left it.
    const userId = crypto.randomUUID();
    let database = openPglite(await PGlite.create(dataDir, { extensions: pgliteExtensions }));
    try {
      // The key made at the first command, the first rotation's, the second's: only the last is not retiring.
      const jwt = await database.db.select().from(serverKeys).where(eq(serverKeys.purpose, "jwt"));
      expect(jwt).toHaveLength(3);
      const live = jwt.filter((k) => k.retiredAt === null).map((k) => k.kid);
      expect(second.stdout).toContain(`retiring ${made}`);
      expect(live).toEqual([/new signing key (\S+):/.exec(second.stdout)?.[1] as string]);
      await database.db.insert(users).values({ id: userId, email: `${userId}@example.com` });
      await database.db.insert(totpSecrets).values({ userId, secretEncrypted: encrypt(keyFromSecret(OLD, "totp"), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), confirmed: true });
    } finally {
      await database.close();
    }

    const resealed = await run(["keys", "reencrypt"], { DATA_DIR: dataDir, ENCRYPTION_KEYS: `${NEW},${OLD}` });
    expect(resealed.code).toBe(0);
    expect(resealed.stdout).toContain("sealed again with the first key of the ring: 1");
    database = openPglite(await PGlite.create(dataDir, { extensions: pgliteExtensions }));
    try {
      const [row] = await database.db.select().from(totpSecrets).where(eq(totpSecrets.userId, userId));
      expect(decrypt(keyFromSecret(NEW, "totp"), row?.secretEncrypted ?? "")).toBe("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    } finally {
      await database.close();
    }
  }, 120_000);
});
