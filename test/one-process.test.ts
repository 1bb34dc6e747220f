import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

// Issue 18: one process per DATA_DIR (a second one on the same folder is refused, naming DATA_DIR); a taken PORT is a
// start error naming PORT; SIGTERM answers the requests in flight, logs each, then stops. Real server processes on the
// embedded database, whatever backends the test run was given.

const ENTRY = join(import.meta.dir, "..", "src", "index.ts");

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

function env(overrides: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), HOST: "127.0.0.1", LOG_LEVEL: "warn", ...overrides };
}

async function run(overrides: Record<string, string>, args: string[] = []) {
  const child = Bun.spawn(["bun", "run", ENTRY, ...args], { env: env(overrides), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, code };
}

async function startServer(dataDir: string, port: number): Promise<Subprocess<"ignore", "pipe", "pipe">> {
  // A slow password hash (64 MiB, t=3) keeps a registration in flight long enough for the SIGTERM test.
  const child = Bun.spawn(["bun", "run", ENTRY], {
    env: env({ DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: "info", PASSWORD_HASH_MEMORY_KIB: "65536", PASSWORD_HASH_TIME_COST: "3" }),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${await new Response(child.stderr).text()}`);
    if (await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false)) return child;
    await Bun.sleep(100);
  }
  child.kill();
  throw new Error("server did not start");
}

const oneLine = (stderr: string) => {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0] ?? "";
};

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
  }, 120_000);

  afterAll(async () => {
    if (first?.exitCode === null) first.kill("SIGKILL");
    await first?.exited;
    await rm(dataDir, { recursive: true, force: true });
    await rm(otherDir, { recursive: true, force: true });
  });

  test("a second process on the same DATA_DIR refuses to start with one line naming DATA_DIR; the first keeps serving", async () => {
    const second = await run({ DATA_DIR: dataDir, PORT: String(freePort()) });
    expect(second.code).toBe(1);
    expect(oneLine(second.stderr)).toContain("Invalid setting DATA_DIR:");
    expect(second.stderr).toContain("one process per DATA_DIR");
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
  }, 60_000);

  test("the commands that open the database are refused too while the server holds DATA_DIR", async () => {
    const migrate = await run({ DATA_DIR: dataDir }, ["migrate"]);
    expect(migrate.code).toBe(1);
    expect(oneLine(migrate.stderr)).toContain("Invalid setting DATA_DIR:");
  }, 60_000);

  test("a taken PORT is a start error naming PORT; the first keeps serving", async () => {
    const second = await run({ DATA_DIR: otherDir, PORT: String(port) });
    expect(second.code).toBe(1);
    expect(oneLine(second.stderr)).toContain("Invalid setting PORT:");
    expect(second.stderr).toContain("in use");
    expect((await fetch(`http://127.0.0.1:${port}/health/ready`)).status).toBe(200);
  }, 60_000);

  test("DATA_DIR naming a file is refused with one line naming DATA_DIR", async () => {
    const res = await run({ DATA_DIR: "/etc/passwd", PORT: String(freePort()) });
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toMatch(/Invalid setting DATA_DIR: must be a directory/);
    expect(res.stderr).not.toContain("[object Object]");
  }, 60_000);

  test("SIGTERM drains: the request in flight is answered and gets its log line, then the process stops with 0", async () => {
    const email = `drain-${crypto.randomUUID().slice(0, 8)}@example.com`;
    // Answers made before routing (a preflight, a 415) are done when answered: they must not be counted as in flight.
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/auth/login`, { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" } })).status).toBe(204);
    expect((await fetch(`${base}/auth/login`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" })).status).toBe(415);
    const answer = fetch(`${base}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse battery staple" }),
    });
    // The registration is hashing its password when the signal comes.
    await Bun.sleep(50);
    first.kill("SIGTERM");
    expect((await answer).status).toBe(201);
    expect(await first.exited).toBe(0);
    const lines = (await new Response(first.stdout).text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const shutting = lines.findIndex((l) => l.msg === "shutting down");
    const request = lines.findIndex((l) => l.msg === "request" && l.route === "/auth/register" && l.status === 201);
    const stopped = lines.findIndex((l) => l.msg === "stopped");
    expect(shutting).toBeGreaterThan(-1);
    expect(lines[shutting]?.inFlight).toBe(1);
    expect(request).toBeGreaterThan(shutting);
    expect(stopped).toBeGreaterThan(request);

    // The lock went with the process: the next one on the folder starts.
    const next = await startServer(dataDir, freePort());
    next.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  }, 120_000);
});
