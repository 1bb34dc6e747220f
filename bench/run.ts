/**
 * `bun run bench`: starts the auth server on Postgres + Redis pinned to core 0, loads it with wrk pinned to core 1,
 * measures each scenario beside a reference taken in the same run, and writes bench/RESULTS.md.
 * Not a test: CI does not run it. About 3 minutes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Subprocess, spawn, spawnSync } from "bun";
import { eq, like, or } from "drizzle-orm";
import { teamMembers, teams } from "../plugins/teams/schema";
import { newId } from "../src/crypto";
import { sessions, users } from "../src/db/schema";
import { buildAuthServer } from "../src/server";
import { PEER_USER } from "./peer-better-auth-user";

const root = new URL("..", import.meta.url).pathname;
const benchDir = new URL(".", import.meta.url).pathname;
const DATABASE_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const SERVER_CORE = "0";
const WRK_CORE = "1";
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 6);
const SLOW_DURATION_S = Number(process.env.BENCH_SLOW_DURATION_S ?? 10);
/** Unmeasured load before the sign-in scenarios (ours and the peer's alike). */
const WARMUP_S = 3;
const PORTS = { server: 3100, peer: 3101, bare: 3102 };
const PASSWORD = "correct-horse-battery-staple";
const work = mkdtempSync(join(tmpdir(), "auth-bench-"));

/** Production settings but the rate limits, which a load test from one IP would only measure. */
const serverEnv: Record<string, string> = {
  DATABASE_URL,
  REDIS_URL,
  KV_PREFIX: "bench:",
  PORT: String(PORTS.server),
  HOST: "127.0.0.1",
  APP_URL: `http://127.0.0.1:${PORTS.server}`,
  LOG_LEVEL: "silent",
  RATE_LIMIT_LOGIN_IP: "100000000/60",
  RATE_LIMIT_LOGIN_EMAIL: "100000000/60",
  RATE_LIMIT_CODE_EMAIL: "100000000/60",
  RATE_LIMIT_EMAIL_CHECK_IP: "100000000/60",
  RATE_LIMIT_REFRESH_SESSION: "100000000/60",
  RATE_LIMIT_ANONYMOUS_IP: "100000000/60",
};

type WrkResult = { requests: number; rps: number; p50Ms: number; p99Ms: number; non2xx: number; socketErrors: string | null };
type Row = { name: string; result: WrkResult | null; note?: string; comparisons: Array<{ against: string; ratio: number | null; target: string; met: boolean | null }> };

function log(message: string) {
  process.stderr.write(`[bench] ${message}\n`);
}

function ensureTools() {
  if (!Bun.which("wrk")) {
    log("wrk is missing: installing it with apt-get");
    const install = () => spawnSync(["apt-get", "install", "-y", "wrk"], { stdout: "ignore", stderr: "inherit" }).exitCode === 0;
    if (!install()) {
      spawnSync(["apt-get", "update"], { stdout: "ignore", stderr: "inherit" });
      if (!install()) throw new Error("could not install wrk");
    }
  }
  if (!Bun.which("taskset")) throw new Error("taskset (util-linux) is required");
  if (!existsSync(join(benchDir, "node_modules/better-auth"))) {
    log("installing bench/ dependencies (better-auth, pg)");
    if (spawnSync(["bun", "install", "--frozen-lockfile"], { cwd: benchDir, stdout: "ignore", stderr: "inherit" }).exitCode !== 0) {
      throw new Error("bun install in bench/ failed");
    }
  }
}

function pinned(core: string, cmd: string[], env: Record<string, string>, cwd = root): Subprocess<"ignore", "pipe", "inherit"> {
  return spawn(["taskset", "-c", core, ...cmd], { cwd, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
}

/**
 * Moves Postgres and Redis (every thread, and the backends Postgres forks later) to `core`, so that the server and
 * each reference have their core to themselves; `restore` gives them every core back. Needs the right to set
 * another process's affinity (root, or the services' owner); without it the run goes on with them unpinned.
 */
function pinServices(core: string): { pinned: boolean; restore(): void } {
  const pids = ["postgres", "redis-server"].flatMap((name) => spawnSync(["pgrep", "-x", name]).stdout.toString().split("\n").filter(Boolean));
  const set = (cores: string) => pids.every((pid) => spawnSync(["taskset", "-a", "-p", "-c", cores, pid], { stdout: "ignore", stderr: "ignore" }).exitCode === 0);
  const all = `0-${Math.max(0, Number(spawnSync(["nproc", "--all"]).stdout.toString().trim()) - 1)}`;
  const pinned = pids.length > 0 && set(core);
  if (!pinned) {
    set(all);
    log("could not pin Postgres and Redis: they run unpinned");
  }
  return { pinned, restore: () => void set(all) };
}

async function waitFor(url: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {}
    await Bun.sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

async function stop(proc: Subprocess<"ignore", "pipe", "inherit">) {
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(5000)]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  return unit === "us" ? v / 1000 : unit === "ms" ? v : unit === "s" ? v * 1000 : unit === "m" ? v * 60_000 : v;
}

function parseWrk(out: string): WrkResult {
  const latency = (q: string) => {
    const m = new RegExp(`^\\s*${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
    return m?.[1] && m[2] ? toMs(m[1], m[2]) : Number.NaN;
  };
  return {
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50Ms: latency("50"),
    p99Ms: latency("99"),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors: ([^\n]+)/.exec(out)?.[1] ?? null,
  };
}

async function wrk(
  url: string,
  opts: { threads?: number; connections?: number; durationS?: number; script?: string; headers?: string[]; env?: Record<string, string> } = {},
): Promise<WrkResult> {
  const threads = opts.threads ?? 4;
  const args = ["-t", String(threads), "-c", String(opts.connections ?? 16), "-d", `${opts.durationS ?? DURATION_S}s`, "--latency", "--timeout", "10s"];
  for (const h of opts.headers ?? []) args.push("-H", h);
  if (opts.script) args.push("-s", join(benchDir, "lua", opts.script));
  const proc = spawnSync(["taskset", "-c", WRK_CORE, "wrk", ...args, url], {
    env: { ...process.env, BENCH_THREADS: String(threads), ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = proc.stdout.toString();
  if (proc.exitCode !== 0) throw new Error(`wrk failed: ${proc.stderr.toString()}`);
  return parseWrk(out);
}

/** Bun.password.verify alone on the server's core, argon2id with the server's parameters, `inFlight` at once. */
function verifyReference(durationS = SLOW_DURATION_S, inFlight = 16): WrkResult {
  const proc = spawnSync(["taskset", "-c", SERVER_CORE, "bun", "password-verify.ts"], {
    cwd: benchDir,
    env: { ...process.env, DURATION_S: String(durationS), IN_FLIGHT: String(inFlight) },
    stdout: "pipe",
    stderr: "inherit",
  });
  const json = JSON.parse(proc.stdout.toString().trim().split("\n").pop() ?? "{}") as { requests: number; rps: number; p50Ms: number; p99Ms: number };
  return { ...json, non2xx: 0, socketErrors: null };
}

/** The median item by `value` (the run with the median rate, by default): noisy scenarios run several rounds. */
function median<T = WrkResult>(items: T[], value: (item: T) => number = (r) => (r as WrkResult).rps): T {
  const sorted = [...items].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor(sorted.length / 2)] as T;
}
const ROUNDS = 3;
/**
 * The sign-in and its reference swing by 10-20% within seconds on a shared machine, more than the margin of the
 * target: they run in short alternating slices, and the figure is the median of the ratios of each slice pair.
 */
const LOGIN_ROUNDS = 5;
const LOGIN_SLICE_S = Number(process.env.BENCH_LOGIN_SLICE_S ?? 6);

const bench = (path: string) => `http://127.0.0.1:${PORTS.server}${path}`;

async function post(path: string, body: unknown, token?: string) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(bench(path), { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text };
}

/** Users, sessions, codes and a team made through the core's own services, on the server's Postgres and Redis. */
async function seed() {
  const server = await buildAuthServer(serverEnv);
  const { ctx } = server;
  try {
    const loginEmail = "bench-login@example.com";
    let loginUser = await ctx.users.findByEmail(loginEmail);
    const passwordHash = await ctx.passwords.hash(PASSWORD);
    if (loginUser) loginUser = await ctx.users.update(loginUser.id, { passwordHash, mfaEnabled: false });
    else loginUser = await ctx.users.create({ email: loginEmail, emailVerified: true, passwordHash });

    const meta = { ip: "127.0.0.1", userAgent: "bench" };
    const sessionTokens: string[] = [];
    for (let i = 0; i < 200; i++) sessionTokens.push((await ctx.sessions.create(loginUser, { amr: ["pwd"], meta })).accessToken);
    // As many sessions as both per-instance caches (verified tokens, session answers) hold twice over: each request
    // of the cold scenario verifies a signature and reads Postgres, as a client asking once in a while would.
    const coldTokens: string[] = [];
    for (let i = 0; i < 20_000; i += 200) {
      const batch = await Promise.all(Array.from({ length: 200 }, () => ctx.sessions.create(loginUser, { amr: ["pwd"], meta })));
      for (const pair of batch) coldTokens.push(pair.accessToken);
    }
    const refreshTokens: string[] = [];
    for (let i = 0; i < (16 + 64) * ROUNDS; i++) refreshTokens.push((await ctx.sessions.create(loginUser, { amr: ["pwd"], meta })).refreshToken);

    const runId = newId().slice(-12);
    const codeLines: string[] = [];
    const purpose = await import("../plugins/magic-code/service").then(
      (m: { MAGIC_CODE_PURPOSE?: string }) => m.MAGIC_CODE_PURPOSE ?? null,
      () => null,
    );
    if (purpose) {
      const emails = Array.from({ length: 30_000 }, (_, i) => `code-${runId}-${i}@example.com`);
      for (let i = 0; i < emails.length; i += 500) {
        const batch = emails.slice(i, i + 500);
        const codes = await Promise.all(batch.map((email) => ctx.codes.issue(purpose, email)));
        batch.forEach((email, j) => {
          codeLines.push(`${email} ${codes[j]}`);
        });
      }
    }

    const teamUser = await ctx.users.create({ email: `bench-team-${runId}@example.com`, emailVerified: true });
    const teamId = newId();
    await ctx.db.insert(teams).values({ id: teamId, name: "Bench team" });
    await ctx.db.insert(teamMembers).values({ teamId, userId: teamUser.id, role: "owner" });
    const teamToken = (await ctx.sessions.create(teamUser, { amr: ["pwd"], meta })).accessToken;

    await Bun.write(join(work, "session-tokens.txt"), sessionTokens.join("\n"));
    await Bun.write(join(work, "cold-session-tokens.txt"), coldTokens.join("\n"));
    for (let round = 0; round < ROUNDS; round++) {
      const at = round * (16 + 64);
      await Bun.write(join(work, `refresh-tokens-16-${round}.txt`), refreshTokens.slice(at, at + 16).join("\n"));
      await Bun.write(join(work, `refresh-tokens-64-${round}.txt`), refreshTokens.slice(at + 16, at + 80).join("\n"));
    }
    await Bun.write(join(work, "codes.txt"), codeLines.join("\n"));
    return { loginEmail, sessionToken: sessionTokens[0] ?? "", teamId, teamToken, runId, hasCodes: codeLines.length > 0, teamUserId: teamUser.id, loginUserId: loginUser.id };
  } finally {
    await server.close();
  }
}

/** Removes what one run made, so repeated runs do not grow the database. */
async function cleanup(seeded: { teamUserId: string; teamId: string; runId: string; loginUserId: string }) {
  const server = await buildAuthServer(serverEnv);
  try {
    const { db } = server.ctx;
    await db.delete(teams).where(eq(teams.id, seeded.teamId));
    await db.delete(users).where(or(eq(users.id, seeded.teamUserId), like(users.email, `%-${seeded.runId}-%@example.com`)));
    await db.delete(sessions).where(eq(sessions.userId, seeded.loginUserId));
  } finally {
    await server.close();
  }
}

async function startServer() {
  const proc = pinned(SERVER_CORE, ["bun", "src/index.ts"], serverEnv);
  await waitFor(bench("/health"));
  return proc;
}

async function startPeer() {
  const proc = pinned(SERVER_CORE, ["bun", "peer-better-auth.ts"], { DATABASE_URL, PORT: String(PORTS.peer) }, benchDir);
  await waitFor(`http://127.0.0.1:${PORTS.peer}/api/auth/ok`, 60_000);
  return proc;
}

async function main() {
  const started = Date.now();
  ensureTools();
  const machine = {
    nproc: spawnSync(["nproc"]).stdout.toString().trim(),
    model: /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown",
    bun: Bun.version,
    wrk: spawnSync(["wrk", "-v"]).stdout.toString().split("\n")[0]?.trim() ?? "",
    load: readFileSync("/proc/loadavg", "utf8").trim(),
  };
  log("seeding");
  const seeded = await seed();
  const services = pinServices(WRK_CORE);
  try {
    await measure(started, machine, seeded, services.pinned);
  } finally {
    services.restore();
  }
}

async function measure(
  started: number,
  machine: { nproc: string; model: string; bun: string; wrk: string; load: string },
  seeded: Awaited<ReturnType<typeof seed>>,
  servicesPinned: boolean,
) {
  const rows: Row[] = [];
  const memory: Array<{ label: string; requests: number; rssMb: number }> = [];
  const ratio = (a: WrkResult | null, b: WrkResult | null) => (a && b && b.rps > 0 ? a.rps / b.rps : null);
  const cmp = (against: string, value: number | null, min: number, target: string) => ({ against, ratio: value, target, met: value === null ? null : value >= min });

  // References first, each alone on core 0.
  log("bare Elysia reference");
  const bare = pinned(SERVER_CORE, ["bun", "bare.ts"], { PORT: String(PORTS.bare) }, benchDir);
  await waitFor(`http://127.0.0.1:${PORTS.bare}/hello`);
  await wrk(`http://127.0.0.1:${PORTS.bare}/hello`, { durationS: 2 });
  const bareResult = await wrk(`http://127.0.0.1:${PORTS.bare}/hello`);
  await stop(bare);

  log("Better Auth peer");
  const peer = await startPeer();
  const signIn = await fetch(`http://127.0.0.1:${PORTS.peer}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: PEER_USER.email, password: PEER_USER.password }),
  });
  const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  await signIn.arrayBuffer();
  const peerUrl = (p: string) => `http://127.0.0.1:${PORTS.peer}/api/auth${p}`;
  await wrk(peerUrl("/get-session"), { durationS: 2, headers: [`Cookie: ${cookie}`] });
  const peerSession = await wrk(peerUrl("/get-session"), { headers: [`Cookie: ${cookie}`] });
  const peerSignInOpts = { script: "post.lua", env: { BENCH_BODY: JSON.stringify({ email: PEER_USER.email, password: PEER_USER.password }) } };
  // Sign-ins get the same warm-up on both sides, so that neither is measured while its JIT is still compiling.
  await wrk(peerUrl("/sign-in/email"), { ...peerSignInOpts, durationS: WARMUP_S });
  const peerSignIn = await wrk(peerUrl("/sign-in/email"), { ...peerSignInOpts, durationS: SLOW_DURATION_S });
  await stop(peer);

  log("auth server");
  const server = await startServer();
  const pid = server.pid;
  await Bun.sleep(1000);
  memory.push({ label: "idle, after start", requests: 0, rssMb: rssMb(pid) });

  const sessionOpts = { script: "tokens.lua", env: { BENCH_DATA: join(work, "session-tokens.txt") } };
  // Memory: 100,000 requests on the hot path, then 100,000 more; RSS after each.
  let served = 0;
  for (const label of ["after 100,000 requests", "after 200,000 requests"]) {
    const goal = served + 100_000;
    while (served < goal) served += (await wrk(bench("/auth/session"), { ...sessionOpts, durationS: 5 })).requests;
    memory.push({ label, requests: served, rssMb: rssMb(pid) });
  }

  log("GET /auth/session");
  const session = await wrk(bench("/auth/session"), sessionOpts);
  rows.push({
    name: "GET /auth/session (200 sessions round-robin)",
    result: session,
    comparisons: [
      cmp("bare Elysia JSON route", ratio(session, bareResult), 0.25, ">= 0.25"),
      cmp("Better Auth get-session", ratio(session, peerSession), 20, ">= 20x"),
    ],
  });

  log("GET /auth/session, cold");
  const cold = await wrk(bench("/auth/session"), { script: "tokens.lua", env: { BENCH_DATA: join(work, "cold-session-tokens.txt") } });
  rows.push({
    name: "GET /auth/session (20,000 sessions, more than the caches hold)",
    result: cold,
    comparisons: [cmp("bare Elysia JSON route", ratio(cold, bareResult), 0, "reported"), cmp("Better Auth get-session", ratio(cold, peerSession), 0, "reported")],
  });

  log(`POST /auth/login, in ${LOGIN_ROUNDS} slices alternating with Bun.password.verify alone`);
  const verifies: WrkResult[] = [];
  const verifiesOneAtATime: WrkResult[] = [];
  const loginProbe = await post("/auth/login", { email: seeded.loginEmail, password: PASSWORD });
  if (loginProbe.status === 404) rows.push({ name: "POST /auth/login", result: null, note: "skipped: the route answers 404 (password plugin not mounted)", comparisons: [] });
  else {
    // Each slice runs the reference (with the server idle), then the route: drift hits both alike.
    const loginOpts = { script: "post.lua", env: { BENCH_BODY: JSON.stringify({ email: seeded.loginEmail, password: PASSWORD }) } };
    const logins: WrkResult[] = [];
    for (let round = 0; round < LOGIN_ROUNDS; round++) {
      verifies.push(verifyReference(LOGIN_SLICE_S, 16));
      verifiesOneAtATime.push(verifyReference(LOGIN_SLICE_S, 1));
      await wrk(bench("/auth/login"), { ...loginOpts, durationS: round === 0 ? WARMUP_S : 1 });
      logins.push(await wrk(bench("/auth/login"), { ...loginOpts, durationS: LOGIN_SLICE_S }));
    }
    const login = median(logins);
    const pairRatios = logins.map((l, i) => ratio(l, verifies[i] ?? null) ?? Number.NaN);
    const pairRatiosOne = logins.map((l, i) => ratio(l, verifiesOneAtATime[i] ?? null) ?? Number.NaN);
    rows.push({
      name: "POST /auth/login (16 connections)",
      result: login,
      note:
        loginProbe.status === 200
          ? `${LOGIN_ROUNDS} slices of ${LOGIN_SLICE_S} s: ${logins.map((r) => fmt(r.rps, 1)).join(", ")} req/s; Bun.password.verify alone before each, 16 in flight: ${verifies.map((r) => fmt(r.rps, 1)).join(", ")}/s (ratios ${pairRatios.map((r) => fmt(r, 2)).join(", ")}); one at a time: ${verifiesOneAtATime.map((r) => fmt(r.rps, 1)).join(", ")}/s (ratios ${pairRatiosOne.map((r) => fmt(r, 2)).join(", ")})`
          : `probe answered ${loginProbe.status}: ${loginProbe.text.slice(0, 120)}`,
      comparisons: [
        cmp("Bun.password.verify alone, 16 in flight (median of the slice ratios)", median(pairRatios, (r) => r), 0.9, ">= 0.90"),
        cmp("Bun.password.verify alone, one at a time (median of the slice ratios)", median(pairRatiosOne, (r) => r), 0, "reported"),
        cmp("Better Auth sign-in/email", ratio(login, peerSignIn), 1.8, ">= 1.8x"),
      ],
    });
  }

  // Without a login route, the reference is still measured once (the register row compares with it).
  if (verifies.length === 0) verifies.push(verifyReference());
  const verifyResult = median(verifies);
  const verifyOneResult = verifiesOneAtATime.length > 0 ? median(verifiesOneAtATime) : null;

  // Each rotation must be durable, so the rate is bound by Postgres commits, which Postgres groups when several
  // arrive at once: the same scenario with 16 and with 64 clients, each rotating its own session's chain.
  for (const clients of [16, 64]) {
    log(`POST /auth/refresh, ${clients} connections, ${ROUNDS} rounds`);
    const rounds: WrkResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      rounds.push(
        await wrk(bench("/auth/refresh"), {
          threads: clients,
          connections: clients,
          script: "refresh.lua",
          env: { BENCH_DATA: join(work, `refresh-tokens-${clients}-${round}.txt`) },
        }),
      );
    }
    const refresh = median(rounds);
    rows.push({
      name: `POST /auth/refresh (rotating, ${clients} connections)`,
      result: refresh,
      note: `median of ${ROUNDS} rounds: ${rounds.map((r) => fmt(r.rps)).join(", ")} req/s`,
      comparisons: [
        { against: "3,500/s absolute", ratio: refresh.rps / 3500, target: ">= 1.0", met: refresh.rps >= 3500 },
        cmp("bare Elysia JSON route", ratio(refresh, bareResult), 0, "reported"),
      ],
    });
  }

  log("POST /auth/register");
  const registerProbe = await post("/auth/register", {});
  if (registerProbe.status === 404) rows.push({ name: "POST /auth/register", result: null, note: "skipped: the route answers 404", comparisons: [] });
  else {
    const register = await wrk(bench("/auth/register"), { durationS: SLOW_DURATION_S, script: "register.lua", env: { BENCH_NONCE: seeded.runId } });
    rows.push({ name: "POST /auth/register (new email each)", result: register, comparisons: [cmp("Bun.password.verify alone, 16 in flight", ratio(register, verifyResult), 0, "reported")] });
  }

  log("POST /auth/code/verify");
  const codeProbe = await post("/auth/code/verify", {});
  if (codeProbe.status === 404 || !seeded.hasCodes) {
    rows.push({ name: "POST /auth/code/verify", result: null, note: "skipped: the route answers 404 or the magic-code plugin is absent", comparisons: [] });
  } else {
    const codes = await wrk(bench("/auth/code/verify"), {
      threads: 16,
      connections: 16,
      script: "codes.lua",
      env: { BENCH_DATA: join(work, "codes.txt") },
      durationS: 4,
    });
    rows.push({
      name: "POST /auth/code/verify (a new user per code)",
      result: codes,
      note: codes.non2xx > 0 ? "30,000 codes were issued; answers past them (400 INVALID_CODE) count as non-2xx" : undefined,
      comparisons: [cmp("bare Elysia JSON route", ratio(codes, bareResult), 0, "reported")],
    });
  }

  log("POST /auth/teams/switch");
  const switchProbe = await post("/auth/teams/switch", { teamId: seeded.teamId }, seeded.teamToken);
  if (switchProbe.status === 404) rows.push({ name: "POST /auth/teams/switch", result: null, note: "skipped: the route answers 404", comparisons: [] });
  else {
    const teamSwitch = await wrk(bench("/auth/teams/switch"), {
      script: "post.lua",
      env: { BENCH_BODY: JSON.stringify({ teamId: seeded.teamId }), BENCH_TOKEN: seeded.teamToken },
    });
    rows.push({
      name: "POST /auth/teams/switch",
      result: teamSwitch,
      note: switchProbe.status === 200 ? undefined : `probe answered ${switchProbe.status}: ${switchProbe.text.slice(0, 120)}`,
      comparisons: [cmp("bare Elysia JSON route", ratio(teamSwitch, bareResult), 0, "reported")],
    });
  }
  memory.push({ label: "end of the run (all scenarios)", requests: Number.NaN, rssMb: rssMb(pid) });
  await stop(server);
  await cleanup(seeded).catch((error) => log(`cleanup failed: ${String(error)}`));
  rmSync(work, { recursive: true, force: true });

  const report = renderReport({ machine, servicesPinned, bareResult, verifyResult, verifyOneResult, peerSession, peerSignIn, rows, memory, elapsedS: (Date.now() - started) / 1000 });
  await Bun.write(join(benchDir, "RESULTS.md"), report);
  log(`wrote bench/RESULTS.md in ${Math.round((Date.now() - started) / 1000)} s`);
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a");
const line = (name: string, r: WrkResult) =>
  `| ${name} | ${fmt(r.rps)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.requests)} | ${r.non2xx}${r.socketErrors ? ` (socket: ${r.socketErrors})` : ""} |`;

function renderReport(data: {
  machine: { nproc: string; model: string; bun: string; wrk: string; load: string };
  servicesPinned: boolean;
  bareResult: WrkResult;
  verifyResult: WrkResult;
  verifyOneResult: WrkResult | null;
  peerSession: WrkResult;
  peerSignIn: WrkResult;
  rows: Row[];
  memory: Array<{ label: string; requests: number; rssMb: number }>;
  elapsedS: number;
}): string {
  const { machine, rows, memory } = data;
  const out: string[] = [];
  out.push("# Benchmark results", "");
  out.push(`Generated by \`bun run bench\` (bench/run.ts) on ${new Date().toISOString()}, in ${Math.round(data.elapsedS)} s.`, "");
  out.push("## Setup", "");
  out.push(`- Machine: ${machine.nproc} vCPUs, ${machine.model}; Bun ${machine.bun}; ${machine.wrk}. Load average at start: ${machine.load}.`);
  out.push(`- Server (and each reference) pinned to core ${SERVER_CORE} with \`taskset\`; \`wrk\` pinned to core ${WRK_CORE}. ${
      data.servicesPinned
        ? `Postgres and Redis (every process, and each backend forked later) pinned to core ${WRK_CORE} too, so the measured process has its core to itself.`
        : "Postgres and Redis run unpinned on the same machine (pinning them was not permitted)."
    }`);
  out.push(`- Server: \`taskset -c ${SERVER_CORE} bun src/index.ts\` with DATABASE_URL=${DATABASE_URL}, REDIS_URL=${REDIS_URL}, KV_PREFIX=bench:, LOG_LEVEL=silent, rate limits raised to 100000000/60, every other setting at its default (EdDSA tokens, argon2id 19 MiB t=2).`);
  out.push(`- Load: \`taskset -c ${WRK_CORE} wrk -t4 -c16 -d${DURATION_S}s --latency\` (slow routes: -d${SLOW_DURATION_S}s after ${WARMUP_S} s of unmeasured load, for ours and the peer's sign-in alike; our sign-in in ${LOGIN_ROUNDS} slices of -d${LOGIN_SLICE_S}s, each after a slice of the Bun.password.verify reference and 1 s of unmeasured load; stateful scripts one connection per thread: -t16 -c16, and -t64 -c64 for the second refresh row), scripts in bench/lua/.`);
  out.push("- Figures are from a shared 2-vCPU machine where other work was running: absolute numbers drift, the ratios (same run) are what counts. The Bun.password.verify reference counts, as wrk does, the verifications completed inside its window.", "");
  out.push("## References (same run)", "");
  out.push("| reference | req/s | p50 ms | p99 ms | requests | non-2xx |", "|---|---:|---:|---:|---:|---:|");
  out.push(line("bare Elysia route, small JSON (bench/bare.ts)", data.bareResult));
  out.push(line("Bun.password.verify alone, argon2id 19 MiB t=2, 16 in flight (bench/password-verify.ts; median of the slices run between the login slices, or one run without a login route)", data.verifyResult));
  if (data.verifyOneResult) out.push(line("Bun.password.verify alone, one at a time, as the server's PASSWORD_HASH_CONCURRENCY runs them on one core (median of the slices)", data.verifyOneResult));
  out.push(line("Better Auth GET /api/auth/get-session (cookie)", data.peerSession));
  out.push(line("Better Auth POST /api/auth/sign-in/email, 16 connections", data.peerSignIn), "");
  out.push("## Scenarios", "");
  out.push("| scenario | req/s | p50 ms | p99 ms | requests | non-2xx |", "|---|---:|---:|---:|---:|---:|");
  for (const row of rows) out.push(row.result ? line(row.name, row.result) : `| ${row.name} | — | — | — | — | — |`);
  out.push("", "## Ratios and targets", "");
  out.push("| scenario | against | ratio | target | met |", "|---|---|---:|---|---|");
  for (const row of rows) {
    for (const c of row.comparisons) {
      const met = c.target === "reported" ? "—" : c.met === null ? "n/a" : c.met ? "yes" : "**no**";
      out.push(`| ${row.name} | ${c.against} | ${c.ratio === null ? "n/a" : fmt(c.ratio, 2)} | ${c.target} | ${met} |`);
    }
  }
  const notes = rows.filter((r) => r.note);
  if (notes.length) {
    out.push("", "Notes:");
    for (const r of notes) out.push(`- ${r.name}: ${r.note}`);
  }
  out.push("", "## Memory (RSS of the server process)", "");
  out.push("| when | requests served | RSS MB |", "|---|---:|---:|");
  for (const m of memory) out.push(`| ${m.label} | ${Number.isFinite(m.requests) ? fmt(m.requests) : "—"} | ${fmt(m.rssMb, 1)} |`);
  const idle = memory[0]?.rssMb ?? Number.NaN;
  const at100k = memory[1]?.rssMb ?? Number.NaN;
  const at200k = memory[2]?.rssMb ?? Number.NaN;
  out.push("");
  out.push(`Targets: idle < 80 MB: ${idle < 80 ? "yes" : "**no**"}; after 100,000 < 150 MB: ${at100k < 150 ? "yes" : "**no**"}; flat over a further 100,000 (within 10%): ${Math.abs(at200k - at100k) / at100k <= 0.1 ? "yes" : "**no**"} (${fmt(((at200k - at100k) / at100k) * 100, 1)}%).`);
  out.push("");
  // The analysis is written by hand (what the profile showed); the figures above are regenerated on every run.
  const analysis = join(benchDir, "analysis.md");
  if (existsSync(analysis)) out.push(readFileSync(analysis, "utf8").trim(), "");
  return `${out.join("\n")}\n`;
}

await main();
