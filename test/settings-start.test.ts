import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ConfigError, loadConfig } from "../src/config";
import { buildAuthServer } from "../src/server";
import { testDatabase } from "./support/server";

// Issue 18: settings that started anyway or stopped with a line naming nothing now stop with one line naming the
// variable and what it takes.

function refusal(input: Record<string, string>): string {
  try {
    loadConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe("settings that must not start", () => {
  test.each([
    [{ APP_URL: "localhost:3000" }, "APP_URL", "http(s) URL"],
    [{ APP_URL: "ftp://x" }, "APP_URL", "http(s) URL"],
    [{ HOST: "999.1.1.1" }, "HOST", "IP address"],
    [{ HOST: "not a host" }, "HOST", "IP address"],
    [{ ENCRYPTION_KEY: "abc" }, "ENCRYPTION_KEY", "at least 32 characters"],
    [{ REQUIRE_EMAIL_VERIFICATION: "yes" }, "REQUIRE_EMAIL_VERIFICATION", "true or false"],
    [{ PORT: "abc" }, "PORT", "whole number from 0 to 65535"],
    [{ PORT: "70000" }, "PORT", "whole number from 0 to 65535"],
    [{ BACKEND_TIMEOUT_MS: "0" }, "BACKEND_TIMEOUT_MS", "whole number from 100"],
  ])("%p is refused naming %s", (input, variable, takes) => {
    const message = refusal(input);
    expect(message).toStartWith(`Invalid setting ${variable}: `);
    expect(message).toContain(takes);
    expect(message).not.toContain("NaN");
    expect(message).not.toContain("[object Object]");
    expect(message.includes("\n")).toBe(false);
  });

  test("good values still start", () => {
    const config = loadConfig({ APP_URL: "https://app.example.com", HOST: "127.0.0.1", PORT: "8080", REQUIRE_EMAIL_VERIFICATION: "true" });
    expect(config.PORT).toBe(8080);
    expect(loadConfig({ HOST: "::" }).HOST).toBe("::");
    expect(loadConfig({ HOST: "auth.internal" }).HOST).toBe("auth.internal");
  });

  test("an unreachable REDIS_URL stops the start with a line naming REDIS_URL, in time", async () => {
    const database = await testDatabase();
    const startedAt = Date.now();
    const error = await buildAuthServer({ REDIS_URL: "redis://127.0.0.1:1", BACKEND_TIMEOUT_MS: 500, LOG_LEVEL: "silent" }, { database }).catch((e: unknown) => e);
    await database.close();
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain("REDIS_URL");
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });

  test("the process prints that one line and exits 1", async () => {
    const child = Bun.spawn(["bun", "run", join(import.meta.dir, "..", "src", "index.ts")], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), REDIS_URL: "redis://127.0.0.1:1", DATA_DIR: join(tmpdir(), `auth-redis-${crypto.randomUUID()}`), BACKEND_TIMEOUT_MS: "500", LOG_LEVEL: "silent" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("REDIS_URL");
  }, 60_000);
});
