import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "..");
const BINARY = join(ROOT, "dist", "auth-server");
const PASSWORD = "correct horse battery staple";

/** A port nobody listens on right now. */
function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

type Running = { process: Subprocess<"ignore", "pipe", "pipe">; base: string; port: number };

/** Only what the binary needs: it must not find node_modules, the repo's drizzle folder or a test's backends. */
function binaryEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), HOST: "127.0.0.1", LOG_LEVEL: "warn", ...extra };
}

async function start(dataDir: string, cwd: string): Promise<Running> {
  const port = freePort();
  const child = Bun.spawn([BINARY], { cwd, env: binaryEnv({ PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "info" }), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`binary exited with ${child.exitCode}: ${await new Response(child.stderr).text()}`);
    const ok = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { process: child, base, port };
    await Bun.sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error("binary did not become healthy within 30 s");
}

async function post(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { accessToken: string; user: { id: string } } };
}

async function stopWithSigterm(running: Running): Promise<number> {
  running.process.kill("SIGTERM");
  return running.process.exited;
}

describe("the compiled binary", () => {
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "auth-binary-"));
    // Always build: the test is the proof that `bun run build` makes a working executable.
    const startedAt = performance.now();
    const build = Bun.spawn(["bun", "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const code = await build.exited;
    if (code !== 0) throw new Error(`bun run build failed: ${await new Response(build.stderr).text()}`);
    expect(performance.now() - startedAt).toBeLessThan(60_000);
  }, 90_000);

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  test("runs on the embedded database, keeps data across a restart and stops cleanly on SIGTERM", async () => {
    const dataDir = join(workDir, "data");
    const email = `binary-${crypto.randomUUID().slice(0, 8)}@example.com`;

    const first = await start(dataDir, workDir);
    try {
      const registered = await post(first.base, "/auth/register", { email, password: PASSWORD });
      expect(registered.status).toBe(201);
      const login = await post(first.base, "/auth/login", { email, password: PASSWORD });
      expect(login.status).toBe(200);
      expect(login.body.user.id).toBe(registered.body.user.id);

      // Over the wire, a body far past 64 KiB gets the JSON 413 too, with a length declared or streamed without one.
      const big = JSON.stringify({ email, password: "x".repeat(2_000_000) });
      for (const body of [big, new Blob([big]).stream()]) {
        const res = await fetch(`${first.base}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
        expect(res.status).toBe(413);
        expect(((await res.json()) as { code: string }).code).toBe("PAYLOAD_TOO_LARGE");
      }

      // The HEALTHCHECK of the image: the same binary asks the running one.
      const probe = Bun.spawn([BINARY, "--healthcheck"], { cwd: workDir, env: binaryEnv({ PORT: String(first.port) }), stdout: "ignore", stderr: "ignore" });
      expect(await probe.exited).toBe(0);
    } finally {
      expect(await stopWithSigterm(first)).toBe(0);
    }
    const stdout = await new Response(first.process.stdout).text();
    expect(stdout).toContain('"msg":"shutting down"');
    expect(stdout).toContain('"route":"/auth/login"');
    expect(stdout).not.toContain(PASSWORD);

    const down = Bun.spawn([BINARY, "--healthcheck"], { cwd: workDir, env: binaryEnv({ PORT: String(first.port) }), stdout: "ignore", stderr: "ignore" });
    expect(await down.exited).toBe(1);

    const second = await start(dataDir, workDir);
    try {
      const again = await post(second.base, "/auth/login", { email, password: PASSWORD });
      expect(again.status).toBe(200);
      const me = await fetch(`${second.base}/auth/me`, { headers: { authorization: `Bearer ${again.body.accessToken}` } });
      expect(me.status).toBe(200);
      expect(((await me.json()) as { email: string }).email).toBe(email);
    } finally {
      expect(await stopWithSigterm(second)).toBe(0);
    }
  }, 90_000);

  test("a wrong setting stops it with one line naming the variable and exit code 1", async () => {
    for (const [variable, value] of [
      ["PORT", "not-a-port"],
      ["JWT_ALG", "none"],
    ] as const) {
      const child = Bun.spawn([BINARY], { cwd: workDir, env: binaryEnv({ DATA_DIR: join(workDir, "unused"), [variable]: value }), stdout: "pipe", stderr: "pipe" });
      expect(await child.exited).toBe(1);
      const stderr = (await new Response(child.stderr).text()).trimEnd();
      expect(stderr.split("\n")).toHaveLength(1);
      expect(stderr).toStartWith(`Invalid setting ${variable}:`);
      expect(stderr).not.toContain(value);
    }
  }, 30_000);
});
