import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

// Issue 19: at start the server said nothing a person could act on, and `/` answered 404.
let dataDir: string;
let child: Subprocess<"ignore", "pipe", "pipe">;
let banner: string;
let url: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "auth-first-screen-"));
  child = Bun.spawn(["bun", "run", "src/index.ts"], {
    cwd: join(import.meta.dir, ".."),
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      DATABASE_URL: "",
      REDIS_URL: "",
      AUTH_PLUGINS: "password,mfa",
      SMTP_URL: "smtp://mailer:smtp-secret-pw@127.0.0.1:2525",
      LOG_LEVEL: "info",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  // The summary goes to stderr once the server listens; its last line is about mail.
  const reader = child.stderr.getReader();
  const decoder = new TextDecoder();
  banner = "";
  const deadline = Date.now() + 60_000;
  while (!/\n {2}Mail .*\n/.test(banner)) {
    if (Date.now() > deadline) throw new Error(`no start-up summary: ${banner}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server exited: ${banner}`);
    banner += decoder.decode(value);
  }
  reader.releaseLock();
  url = /open (http:\/\/\S+)/.exec(banner)?.[1] ?? "";
}, 90_000);

afterAll(async () => {
  child.kill();
  await child.exited;
  await rm(dataDir, { recursive: true, force: true });
});

describe("a standalone server's first screen", () => {
  test("the console says which URL to open, where /docs is, the plugins, where data lives and where mail goes", () => {
    expect(url).toMatch(/^http:\/\/localhost:\d+$/);
    expect(banner).toContain(`API reference  ${url}/docs`);
    expect(banner).toContain("Plugins on     password, mfa");
    expect(banner).toContain(`Data           embedded PGlite in ${dataDir}`);
    expect(banner).toContain("Mail           SMTP via smtp://127.0.0.1:2525, from Auth <no-reply@localhost>");
    expect(banner).toContain("Short-lived    in memory");
    // The SMTP password stays out of the console.
    expect(banner).not.toContain("smtp-secret-pw");
  });

  test("GET / leads to the hosted sign-in page (APP_URL is this server), which answers; /docs answers too", async () => {
    const landing = await fetch(`${url}/`, { redirect: "manual" });
    expect(landing.status).toBe(302);
    expect(landing.headers.get("location")).toBe("/auth/ui/sign-in");
    const signIn = await fetch(new URL(landing.headers.get("location") as string, url));
    expect(signIn.status).toBe(200);
    expect(await signIn.text()).toContain("<form");
    const docs = await fetch(`${url}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("<title>Auth server</title>");
  });
});
