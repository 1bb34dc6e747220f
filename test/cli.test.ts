import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { Subprocess } from "bun";
import pkg from "../package.json" with { type: "json" };

// Issue 18: a CLI in the same binary; one process per DATA_DIR; a taken PORT is a start error naming PORT.

const ENTRY = join(import.meta.dir, "..", "src", "index.ts");

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/** The embedded default, whatever backends the test run itself was given. */
function env(overrides: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tmpdir(),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    PASSWORD_HASH_MEMORY_KIB: "4096",
    PASSWORD_HASH_TIME_COST: "1",
    ...overrides,
  };
}

async function run(args: string[], overrides: Record<string, string> = {}) {
  const child = Bun.spawn(["bun", "run", ENTRY, ...args], { env: env(overrides), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, code };
}

async function startServer(dataDir: string, port: number): Promise<Subprocess<"ignore", "pipe", "pipe">> {
  const child = Bun.spawn(["bun", "run", ENTRY], { env: env({ DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: "info", PASSWORD_HASH_MEMORY_KIB: "65536", PASSWORD_HASH_TIME_COST: "3" }), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${await new Response(child.stderr).text()}`);
    if (await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false)) return child;
    await Bun.sleep(100);
  }
  child.kill();
  throw new Error("server did not start");
}

describe("the command line", () => {
  test("--help and --version answer and exit 0 without starting a server", async () => {
    const help = await run(["--help"], { PORT: String(freePort()) });
    expect(help.code).toBe(0);
    for (const command of ["migrate", "keys rotate", "users create-admin EMAIL", "healthcheck", "--version"]) expect(help.stdout).toContain(command);
    const version = await run(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
  });

  test("an unknown command is an error, not a server start", async () => {
    const unknown = await run(["--hepl"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown command: --hepl");
  });

  test("migrate, keys rotate and users create-admin work on a DATA_DIR, then exit", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "auth-cli-"));
    try {
      const migrated = await run(["migrate"], { DATA_DIR: dataDir });
      expect(migrated.code).toBe(0);
      expect(JSON.parse(migrated.stdout.trim().split("\n").at(-1) ?? "{}")).toMatchObject({ level: "info", msg: "migrated", db: "pglite" });
      // A server context (it makes the first signing key), then a rotation adds the second.
      const admin = await run(["users", "create-admin", "Root@Example.com"], { DATA_DIR: dataDir, MAIL_TRANSPORT: "console" });
      expect(admin.code).toBe(0);
      expect(admin.stdout).toContain("admin created");
      const rotated = await run(["keys", "rotate"], { DATA_DIR: dataDir });
      expect(rotated.code).toBe(0);
      expect(rotated.stdout).toContain("signing key rotated");
      const pg = await PGlite.create(dataDir);
      try {
        const users = await pg.query<{ email: string; roles: string[] }>("select email, roles from users");
        expect(users.rows).toEqual([{ email: "root@example.com", roles: ["user", "admin"] }]);
        const keys = await pg.query<{ n: number }>("select count(*)::int as n from server_keys where purpose = 'jwt'");
        expect(keys.rows[0]?.n).toBe(2);
      } finally {
        await pg.close();
      }
      const missing = await run(["users", "create-admin"], { DATA_DIR: dataDir });
      expect(missing.code).toBe(2);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("one process per DATA_DIR and per PORT", () => {
  let dataDir: string;
  let otherDir: string;
  let port: number;
  let first: Subprocess<"ignore", "pipe", "pipe">;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "auth-lock-"));
    otherDir = await mkdtemp(join(tmpdir(), "auth-lock-other-"));
    port = freePort();
    first = await startServer(dataDir, port);
  }, 90_000);

  afterAll(async () => {
    first?.kill("SIGTERM");
    await first?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(otherDir, { recursive: true, force: true });
  });

  test("a second process on the same DATA_DIR refuses to start with one line naming DATA_DIR; the first keeps serving", async () => {
    const second = await run([], { DATA_DIR: dataDir, PORT: String(freePort()) });
    expect(second.code).toBe(1);
    const lines = second.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("DATA_DIR");
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
  }, 60_000);

  test("a taken PORT is a start error naming PORT", async () => {
    const second = await run([], { DATA_DIR: otherDir, PORT: String(port) });
    expect(second.code).toBe(1);
    const lines = second.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PORT");
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
  }, 60_000);

  test("DATA_DIR naming a file is refused with a line naming DATA_DIR", async () => {
    const res = await run([], { DATA_DIR: "/etc/passwd", PORT: String(freePort()) });
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toMatch(/^[^\n]*DATA_DIR[^\n]*directory[^\n]*$/);
    expect(res.stderr).not.toContain("[object Object]");
  }, 60_000);

  test("healthcheck exits 0 while the server is ready, 1 when nothing answers", async () => {
    expect((await run(["healthcheck"], { PORT: String(port) })).code).toBe(0);
    expect((await run(["healthcheck"], { PORT: String(freePort()) })).code).toBe(1);
  }, 60_000);

  test("SIGTERM drains: the request in flight is answered and gets its log line, then the process stops", async () => {
    const email = `drain-${crypto.randomUUID().slice(0, 8)}@example.com`;
    // A registration hashes its password (64 MiB, t=3 here): it is still running when the signal arrives.
    const answer = fetch(`http://127.0.0.1:${port}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse battery staple" }),
    });
    await Bun.sleep(20);
    first.kill("SIGTERM");
    expect((await answer).status).toBe(201);
    expect(await first.exited).toBe(0);
    const lines = (await new Response(first.stdout).text()).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const request = lines.findIndex((l) => l.msg === "request" && l.route === "/auth/register" && l.status === 201);
    const shutting = lines.findIndex((l) => l.msg === "shutting down");
    const stopped = lines.findIndex((l) => l.msg === "stopped");
    expect(shutting).toBeGreaterThan(-1);
    expect(request).toBeGreaterThan(shutting);
    expect(stopped).toBeGreaterThan(request);
  }, 60_000);
});
