/**
 * Memory of a start on the embedded database: spawns `bun src/index.ts` with a fresh, empty DATA_DIR (PGlite, no
 * DATABASE_URL or REDIS_URL), samples /proc/<pid>/status VmHWM (peak RSS) every 10 ms until /health/ready answers 200,
 * stops it, then starts it again on the same DATA_DIR. Prints one JSON line: [{label, hwmMb, readyMs}, ...].
 * `bun bench/first-start.ts` (run by `bun run bench -- --only firststart`).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "bun";

const root = new URL("..", import.meta.url).pathname;
const port = Number(process.env.PORT ?? 3120);
const dataDir = mkdtempSync(join(tmpdir(), "auth-first-start-"));

function hwmKb(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function start(label: string) {
  const env: Record<string, string> = { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", APP_URL: `http://127.0.0.1:${port}`, LOG_LEVEL: "silent" } as Record<string, string>;
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const started = performance.now();
  const proc = spawn(["bun", ...(process.env.BENCH_BUN_FLAGS ?? "").split(" ").filter(Boolean), "src/index.ts"], { cwd: root, env, stdout: "ignore", stderr: "ignore" });
  let peak = 0;
  let readyMs = Number.NaN;
  const sampler = setInterval(() => {
    peak = Math.max(peak, hwmKb(proc.pid));
  }, 10);
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline && proc.exitCode === null) {
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`)
      .then(async (res) => {
        await res.arrayBuffer();
        return res.status === 200;
      })
      .catch(() => false);
    if (ok) {
      readyMs = performance.now() - started;
      break;
    }
    await Bun.sleep(20);
  }
  peak = Math.max(peak, hwmKb(proc.pid));
  clearInterval(sampler);
  proc.kill("SIGTERM");
  await proc.exited;
  return { label, hwmMb: peak / 1024, readyMs };
}

try {
  const first = await start("first start, empty DATA_DIR");
  const second = await start("second start, same DATA_DIR");
  console.log(JSON.stringify([first, second]));
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
