/**
 * `bun bench/admin-search.ts [--pglite]`: GET /auth/admin/users over 100,000 users, on Postgres (DATABASE_URL's
 * server, in a database of its own that is made and dropped here) or on the embedded PGlite. Each query runs
 * through the app (routing, admin check, validation, SQL, serialisation) 200 times one after another; the p50 and
 * p99 latencies and the plan picked are written to bench/RESULTS.md between the admin-search markers (one pair per
 * backend, so bench/run.ts's rewrite of the file must keep them: it does not know them yet).
 * Not a test: CI does not run it. About a minute.
 */
import { loadavg } from "node:os";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { sql } from "drizzle-orm";
import type { Database } from "../src/db";
import { openPostgres } from "../src/db/postgres";
import { openPglite, pgliteExtensions } from "../src/db/pglite";
import { MemoryStore } from "../src/kv";
import { MemoryMailer } from "../src/mail";
import { buildAuthServer } from "../src/server";

const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const embedded = process.argv.includes("--pglite");
const baseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";

const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Linus", "Ken", "Dennis", "Frances", "John", "Radia", "Tim", "Sophie", "Hedy"];
const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Torvalds", "Thompson", "Ritchie", "Allen", "McCarthy", "Perlman", "Berners-Lee", "Wilson", "Lamarr"];

async function openBenchDatabase(): Promise<{ database: Database; drop(): Promise<void> }> {
  if (embedded) {
    const database = openPglite(await PGlite.create({ extensions: pgliteExtensions }));
    return { database, drop: () => database.close() };
  }
  const name = `bench_admin_search_${process.pid}`;
  const root = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await root.unsafe(`drop database if exists ${name} with (force)`);
  await root.unsafe(`create database ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const database = openPostgres(url.toString(), 30_000);
  return {
    database,
    async drop() {
      await database.close();
      await root.unsafe(`drop database if exists ${name} with (force)`);
      await root.end();
    },
  };
}

/** 100,000 users in one statement: names from small lists (so common substrings match thousands), one a second apart. */
async function seed(database: Database) {
  const first = sql.raw(`ARRAY[${FIRST.map((n) => `'${n}'`).join(",")}]`);
  const last = sql.raw(`ARRAY[${LAST.map((n) => `'${n.replace("'", "''")}'`).join(",")}]`);
  await database.db.execute(sql`
    insert into users (id, email, email_verified, username, first_name, last_name, roles, banned, created_at, updated_at)
    select gen_random_uuid(), 'person' || i || '@example' || (i % 97) || '.com', true, 'handle_' || i,
           (${first})[1 + i % ${FIRST.length}], (${last})[1 + (i / 7) % ${LAST.length}],
           case when i % 5000 = 0 then ARRAY['user','admin'] else ARRAY['user'] end,
           i % 1000 = 0, now() - (i || ' seconds')::interval, now()
    from generate_series(1, ${USERS}) as i`);
  // What autovacuum does soon after a bulk load: it folds the GIN indexes' pending lists in, which searches would scan.
  await database.db.execute(sql`vacuum analyze users`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main() {
  const { database, drop } = await openBenchDatabase();
  try {
    const server = await buildAuthServer({ LOG_LEVEL: "silent" }, { database, kv: new MemoryStore(), mailer: new MemoryMailer() });
    const started = performance.now();
    await seed(database);
    const seedS = (performance.now() - started) / 1000;
    const boss = await server.ctx.users.create({ email: "boss@bench.example", emailVerified: true, roles: ["user", "admin"] });
    const token = (await server.ctx.sessions.create(boss, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    const call = async (path: string) => {
      const res = await server.app.handle(new Request(`http://localhost/auth/admin/users${path}`, { headers: { authorization: `Bearer ${token}` } }));
      const body = (await res.json()) as { users: unknown[]; nextCursor: string | null };
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
      return body;
    };
    const secondPage = (await call("?query=lovelace")).nextCursor ?? "";
    const scenarios: Array<[string, string]> = [
      ["first page, no filter", ""],
      ["query matching ~6% (`lovelace`)", "?query=lovelace"],
      ["query matching ~6%, second page (cursor)", `?query=lovelace&cursor=${encodeURIComponent(secondPage)}`],
      ["query matching 1 user (`person73519@`)", "?query=person73519%40"],
      ["query matching 11 users (`handle_9999`)", "?query=handle_9999"],
      ["query matching nobody (`zzqx`)", "?query=zzqx"],
      ["role=admin (20 users)", "?role=admin"],
      ["banned=true (100 users)", "?banned=true"],
      ["query + role (`ada`, admin)", "?query=ada&role=admin"],
      ["limit=100, no filter", "?limit=100"],
    ];
    const rows: string[] = [];
    for (const [name, path] of scenarios) {
      for (let i = 0; i < 20; i++) await call(path);
      const times: number[] = [];
      let found = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const t = performance.now();
        found = (await call(path)).users.length;
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      rows.push(`| ${name} | ${found} | ${percentile(times, 50).toFixed(2)} | ${percentile(times, 99).toFixed(2)} |`);
      process.stderr.write(`[admin-search] ${rows[rows.length - 1]}\n`);
    }
    const plan = await database.db.execute(
      sql`explain select id from users where (lower(coalesce(email, '') || ' ' || coalesce(username, '') || ' ' || coalesce(first_name, '') || ' ' || coalesce(last_name, ''))) like lower('%person73519@%') order by created_at desc, id desc limit 21`,
    );
    const planLines = ((plan as unknown as { rows?: Array<Record<string, string>> }).rows ?? (plan as unknown as Array<Record<string, string>>)).map(
      (r) => Object.values(r)[0],
    );
    await server.close();

    const backendName = embedded ? "PGlite (embedded, in-process)" : `Postgres (${baseUrl.replace(/\/[^/]*$/, "/<own database>")})`;
    const section = [
      `<!-- admin-search:${embedded ? "pglite" : "postgres"} -->`,
      `## Admin user search over 100,000 users, ${embedded ? "PGlite" : "Postgres"}`,
      "",
      `Generated by \`bun bench/admin-search.ts${embedded ? " --pglite" : ""}\` on ${new Date().toISOString()}: ${USERS.toLocaleString("en")} users on ${backendName}` +
        ` (seeded in ${seedS.toFixed(1)} s), each request through the app in process (admin check, validation, SQL, JSON), ${ROUNDS} in a row per row after 20 unmeasured.` +
        ` Load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${navigator.hardwareConcurrency} CPUs shared with other work, so p99s are noisy.` +
        " `bun bench/admin-search.ts` for Postgres, `--pglite` for the embedded database.",
      "",
      "| GET /auth/admin/users | users answered | p50 ms | p99 ms |",
      "|---|---:|---:|---:|",
      ...rows,
      "",
      "Plan of a rare substring (the trigram index `users_search_idx` answers it):",
      "",
      "```",
      ...planLines,
      "```",
      `<!-- /admin-search:${embedded ? "pglite" : "postgres"} -->`,
    ].join("\n");
    const resultsPath = new URL("RESULTS.md", import.meta.url).pathname;
    const current = await Bun.file(resultsPath).text();
    const key = embedded ? "pglite" : "postgres";
    const marked = new RegExp(`<!-- admin-search:${key} -->[\\s\\S]*<!-- /admin-search:${key} -->`);
    await Bun.write(resultsPath, marked.test(current) ? current.replace(marked, section) : `${current.trimEnd()}\n\n${section}\n`);
    process.stderr.write(`[admin-search] written to ${resultsPath}\n`);
  } finally {
    await drop();
  }
}

await main();
