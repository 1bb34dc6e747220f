/**
 * What the webhook outbox costs the requests that make events: the same sign-ups and sign-ins against a server with the
 * webhooks plugin off and one with it on (a local receiver answering 204), alternating rounds so drift hits both alike.
 * Argon2 is turned down (4 MiB, t=1) so the database work, which the outbox adds to, is not lost in the hash.
 *
 *   bun bench/webhooks-outbox.ts                        # embedded PGlite + memory store
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/x REDIS_URL=redis://127.0.0.1:6379 bun bench/webhooks-outbox.ts
 */
import { type AuthServer, buildAuthServer } from "../src/server";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PER_ROUND = Number(process.env.PER_ROUND ?? 40);
const PASSWORD = "correct horse battery staple";

const receiver = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status: 204 }) });
const base = {
  DATABASE_URL: process.env.DATABASE_URL,
  REDIS_URL: process.env.REDIS_URL,
  DATA_DIR: `/tmp/webhooks-bench-${process.pid}`,
  LOG_LEVEL: "silent",
  PASSWORD_HASH_MEMORY_KIB: "4096",
  PASSWORD_HASH_TIME_COST: "1",
  RATE_LIMIT_LOGIN_IP: "100000000/60",
  RATE_LIMIT_LOGIN_EMAIL: "100000000/60",
  RATE_LIMIT_SIGNUP_IP: "100000000/60",
  RATE_LIMIT_ANONYMOUS_IP: "100000000/60",
};
const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

async function call(server: AuthServer, path: string, body?: unknown): Promise<number> {
  const started = performance.now();
  const res = await server.app.handle(
    new Request(`http://localhost${path}`, { method: "POST", headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined }),
  );
  if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
  return performance.now() - started;
}

type Samples = Record<"register" | "login" | "guest", number[]>;
const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p95: at(0.95) };
};

async function round(server: AuthServer, into: Samples, label: string) {
  for (let i = 0; i < PER_ROUND; i++) {
    const email = `bench-${label}-${crypto.randomUUID()}@example.com`;
    into.register.push(await call(server, "/auth/register", { email, password: PASSWORD }));
    into.login.push(await call(server, "/auth/login", { email, password: PASSWORD }));
    into.guest.push(await call(server, "/auth/anonymous"));
  }
}

const off = await buildAuthServer({ ...base, KV_PREFIX: "bench-off:", DATA_DIR: `${base.DATA_DIR}-off` });
const on = await buildAuthServer({ ...base, KV_PREFIX: "bench-on:", DATA_DIR: `${base.DATA_DIR}-on`, WEBHOOK_URLS: `http://127.0.0.1:${receiver.port}/`, WEBHOOK_SECRET: secret });
const samples = { off: { register: [], login: [], guest: [] } as Samples, on: { register: [], login: [], guest: [] } as Samples };
// One unmeasured round each: first queries build plans, the first mail loads templates.
await round(off, { register: [], login: [], guest: [] }, "warm");
await round(on, { register: [], login: [], guest: [] }, "warm");
for (let r = 0; r < ROUNDS; r++) {
  await round(off, samples.off, "off");
  await round(on, samples.on, "on");
}

const rows = (["register", "login", "guest"] as const).map((kind) => {
  const a = stats(samples.off[kind]);
  const b = stats(samples.on[kind]);
  return `| ${{ register: "POST /auth/register", login: "POST /auth/login", guest: "POST /auth/anonymous" }[kind]} | ${a.p50.toFixed(2)} | ${b.p50.toFixed(2)} | ${(b.p50 - a.p50).toFixed(2)} | ${a.p95.toFixed(2)} | ${b.p95.toFixed(2)} |`;
});
console.log(`backend: ${process.env.DATABASE_URL ? "Postgres + Redis" : "PGlite + memory"}; ${ROUNDS} x ${PER_ROUND} of each, alternating; load average ${(await Bun.file("/proc/loadavg").text()).trim()}`);
console.log("| request (sequential) | p50 ms, webhooks off | p50 ms, on | p50 difference | p95 off | p95 on |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const row of rows) console.log(row);
await Promise.all([off.close(), on.close()]);
receiver.stop(true);
