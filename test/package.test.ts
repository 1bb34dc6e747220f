import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Issue 19: the package was private, `bun add <path>` copied 202 MB (a development database with private signing
// keys among it), and `elysia` as a dependency gave a host app a second copy.
const root = join(import.meta.dir, "..");
let work: string;
let tarball: string;
let entries: string[];

async function run(cmd: string[], cwd: string, env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${stderr || stdout}`);
  return stdout;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "auth-pack-"));
  await run(["bun", "pm", "pack", "--destination", work, "--quiet", "--ignore-scripts"], root);
  tarball = join(work, "bun-auth-server-0.1.0.tgz");
  entries = (await run(["tar", "-tzf", tarball], work)).split("\n").filter(Boolean);
}, 60_000);

afterAll(() => rm(work, { recursive: true, force: true }));

describe("the package", () => {
  test("the tarball holds code, migrations and templates only, under 5 MB", async () => {
    expect((await stat(tarball)).size).toBeLessThan(5 * 1024 * 1024);
    for (const needed of [
      "package/package.json",
      "package/src/server.ts",
      "package/src/verify.ts",
      "package/src/data/common-passwords.txt",
      "package/plugins/password/index.ts",
      "package/emails/layout.tsx",
      "package/drizzle/meta/_journal.json",
      "package/README.md",
    ]) {
      expect(entries).toContain(needed);
    }
    expect(entries.some((e) => /^package\/drizzle\/\d{4}_.+\.sql$/.test(e))).toBe(true);
    const forbidden = entries.filter((e) => /^package\/(data|test|bench|examples|node_modules|dist|\.ci|\.git)\//.test(e) || /(^|\/)\.env$/.test(e));
    expect(forbidden).toEqual([]);
  });

  test("its manifest: publishable, exports with types, elysia as a peer", async () => {
    const manifest = JSON.parse(await run(["tar", "-xzOf", tarball, "package/package.json"], work));
    expect(manifest.private).toBeUndefined();
    expect(manifest.peerDependencies.elysia).toBeDefined();
    expect(manifest.dependencies.elysia).toBeUndefined();
    expect(manifest.exports["."].types).toBe("./src/server.ts");
    expect(manifest.exports["./verify"].types).toBe("./src/verify.ts");
  });

  test("`bun add <tarball>` into a fresh app: it imports both entries, mounts the server, and shares the app's elysia", async () => {
    const app = join(work, "host-app");
    await Bun.write(join(app, "package.json"), JSON.stringify({ name: "host-app", private: true, type: "module", dependencies: { elysia: "1.4.30" } }));
    await run(["bun", "add", tarball], app);
    // One elysia, the host's: a second copy under the package breaks `.use(auth)` in a host's types.
    expect(await Bun.file(join(app, "node_modules/bun-auth-server/node_modules/elysia/package.json")).exists()).toBe(false);
    expect(await Bun.file(join(app, "node_modules/elysia/package.json")).exists()).toBe(true);

    await Bun.write(
      join(app, "main.ts"),
      `import { Elysia } from "elysia";
import { createAuthServer } from "bun-auth-server";
import { createTokenVerifier } from "bun-auth-server/verify";
const auth = await createAuthServer({ DATA_DIR: "./data", LOG_LEVEL: "silent" });
const app = new Elysia().use(auth).get("/hello", () => "hi");
const call = (path, init) => app.handle(new Request("http://localhost" + path, init));
const register = await call("/auth/register", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ email: "ada@example.com", password: "correct horse battery staple" }) });
const result = { health: (await call("/health")).status, hello: await (await call("/hello")).text(),
  register: register.status, verifier: typeof createTokenVerifier };
console.log("RESULT " + JSON.stringify(result));
process.exit(0);
`,
    );
    const output = await run(["bun", "main.ts"], app, { DATABASE_URL: "", REDIS_URL: "" });
    const line = output.split("\n").find((l) => l.startsWith("RESULT "));
    expect(JSON.parse((line ?? "RESULT null").slice(7))).toEqual({ health: 200, hello: "hi", register: 201, verifier: "function" });
  }, 180_000);
});
