/**
 * `bun bench/hosted-ui.ts`: page weight and time to first byte of the hosted pages, on the embedded database, over a
 * real socket. Writes bench/HOSTED_UI.md. Not a test: CI does not run it. About half a minute.
 */
import { gzipSync } from "node:zlib";
import { buildAuthServer } from "../src/server";

const SAMPLES = 200;
const server = await buildAuthServer({ DATA_DIR: "memory://", LOG_LEVEL: "silent", PASSWORD_HASH_MEMORY_KIB: 4096, PASSWORD_HASH_TIME_COST: 1 });
const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (request) => server.app.handle(request) });
const origin = `http://127.0.0.1:${http.port}`;

const user = await server.ctx.users.create({ email: "bench@example.com", emailVerified: true, passwordHash: await server.ctx.passwords.hash("a bench passphrase") });
const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: "bench" } });
const signedIn = { cookie: `auth_at=${tokens.accessToken}; auth_rt=${tokens.refreshToken}` };

async function ttfbMs(path: string, headers: Record<string, string> = {}): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    const res = await fetch(`${origin}${path}`, { headers, redirect: "manual" });
    times.push(performance.now() - start);
    await res.arrayBuffer();
  }
  return times.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
const rows: string[] = [];
const pages: Array<[string, string, Record<string, string>]> = [
  ["sign-in", "/auth/ui/sign-in", {}],
  ["sign-up", "/auth/ui/sign-up", {}],
  ["forgot-password", "/auth/ui/forgot-password", {}],
  ["account (signed in)", "/auth/ui/account", signedIn],
];
const css = await (await fetch(`${origin}${/href="([^"]+\.css[^"]*)"/.exec(await (await fetch(`${origin}/auth/ui/sign-in`)).text())?.[1]}`)).text();
/** The one script a page may load (passkeys need it): its path, and its size once fetched. */
const scripts = new Map<string, number>();
for (const [name, path, headers] of pages) {
  const body = await (await fetch(`${origin}${path}`, { headers })).text();
  const script = /<script[^>]+src="([^"]+)"/.exec(body)?.[1];
  if (script && !scripts.has(script)) scripts.set(script, (await (await fetch(`${origin}${script}`)).text()).length);
  const times = await ttfbMs(path, headers);
  rows.push(
    `| ${name} | ${body.length} | ${gzipSync(body).length} | ${script ? `${scripts.get(script)} bytes` : "none"} | ${(pct(times, 0.5)).toFixed(2)} | ${(pct(times, 0.99)).toFixed(2)} |`,
  );
}
const report = `# Hosted pages: weight and time to first byte

Measured by \`bun bench/hosted-ui.ts\` on ${new Date().toISOString().slice(0, 10)}: embedded database, one process, ${SAMPLES}
sequential requests per page over a loopback socket (so the times include fetch's own overhead). Pages that offer
passkeys load one script of this server's (no framework, no library); the others none. The HTML of a page is a
kilobyte or two gzipped; each loads one stylesheet (${css.length} bytes, ${gzipSync(css).length} gzipped, cached for a year by its hashed URL).

| page | HTML bytes | gzipped | script | median ms | p99 ms |
|---|---|---|---|---|---|
${rows.join("\n")}

The account page's time is almost all the session list (\`Sessions.list\`, the query \`GET /auth/sessions\` runs too);
the pages themselves render in well under a millisecond.
`;
await Bun.write(new URL("HOSTED_UI.md", import.meta.url), report);
console.log(report);
http.stop(true);
await server.close();
