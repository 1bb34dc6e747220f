import { describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../src/config";
import { buildAuthServer } from "../src/server";
import { testDatabase } from "./support/server";

// Issue 18: settings that started anyway or stopped with a line naming nothing stop with one line naming the variable
// and what it takes.

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
    [{ TRUST_PROXY: "on" }, "TRUST_PROXY", "true or false"],
    [{ PORT: "abc" }, "PORT", "whole number from 0 to 65535"],
    [{ PORT: "70000" }, "PORT", "whole number from 0 to 65535"],
    [{ PORT: "80.5" }, "PORT", "whole number from 0 to 65535"],
    [{ ACCESS_TOKEN_TTL_S: "-1" }, "ACCESS_TOKEN_TTL_S", "whole number, 1 or more"],
    [{ ACCESS_TOKEN_TTL_S: "0" }, "ACCESS_TOKEN_TTL_S", "whole number, 1 or more"],
    [{ SESSION_MAX_AGE_S: "0" }, "SESSION_MAX_AGE_S", "whole number, 1 or more"],
    [{ ADMIN_EMAILS: "notanemail" }, "ADMIN_EMAILS", "comma-separated email addresses"],
    [{ ADMIN_EMAILS: "a@example.com, b" }, "ADMIN_EMAILS", "comma-separated email addresses"],
    [{ MAIL_FROM: "not an address" }, "MAIL_FROM", "Name <address>"],
    [{ MAIL_FROM: "Auth <nobody>" }, "MAIL_FROM", "Name <address>"],
    [{ RATE_LIMIT_SIGNUP_IP: "0/10" }, "RATE_LIMIT_SIGNUP_IP", "both at least 1"],
    [{ WEBAUTHN_RP_ID: "evil.com" }, "WEBAUTHN_RP_ID", "host of APP_URL"],
    [{ WEBAUTHN_RP_ID: "example.com", WEBAUTHN_ORIGIN: "https://example.org" }, "WEBAUTHN_RP_ID", "host of WEBAUTHN_ORIGIN"],
    [{ BACKEND_TIMEOUT_MS: "0" }, "BACKEND_TIMEOUT_MS", "whole number from 100"],
    [{ AUDIT_RETENTION_DAYS: "a year" }, "AUDIT_RETENTION_DAYS", "whole number, 0 or more"],
  ])("%p is refused naming %s", (input, variable, takes) => {
    const message = refusal(input);
    expect(message).toStartWith(`Invalid setting ${variable}: `);
    expect(message).toContain(takes);
    expect(message).not.toContain("NaN");
    expect(message).not.toContain("[object Object]");
    expect(message.includes("\n")).toBe(false);
    // The value may be a secret: it is never repeated.
    for (const value of Object.values(input)) expect(message).not.toContain(`: ${value}`);
  });

  test("good values still start", () => {
    const config = loadConfig({ APP_URL: "https://app.example.com", HOST: "127.0.0.1", PORT: "8080", REQUIRE_EMAIL_VERIFICATION: "true", BACKEND_TIMEOUT_MS: "100" });
    expect(config).toMatchObject({ PORT: 8080, HOST: "127.0.0.1", REQUIRE_EMAIL_VERIFICATION: true, BACKEND_TIMEOUT_MS: 100 });
    expect(loadConfig({ HOST: "::" }).HOST).toBe("::");
    expect(loadConfig({ HOST: "auth.internal" }).HOST).toBe("auth.internal");
    expect(loadConfig({ HOST: "localhost" }).HOST).toBe("localhost");
    expect(loadConfig({ APP_URL: "http://localhost:3000" }).APP_URL).toBe("http://localhost:3000");
    expect(loadConfig({ ENCRYPTION_KEY: "k".repeat(32) }).ENCRYPTION_KEY).toBe("k".repeat(32));
    expect(loadConfig({}).AUDIT_RETENTION_DAYS).toBe(365);
    expect(loadConfig({ AUDIT_RETENTION_DAYS: "0" }).AUDIT_RETENTION_DAYS).toBe(0);
    expect(loadConfig({ MAIL_FROM: "no-reply@example.com" }).MAIL_FROM).toBe("no-reply@example.com");
    expect(loadConfig({ MAIL_FROM: "Acme Auth <auth@acme.test>" }).MAIL_FROM).toBe("Acme Auth <auth@acme.test>");
    expect(loadConfig({ ADMIN_EMAILS: "a@example.com, root@localhost" }).ADMIN_EMAILS).toEqual(["a@example.com", "root@localhost"]);
    expect(loadConfig({ APP_URL: "https://app.example.com", WEBAUTHN_RP_ID: "example.com" }).webauthn.rpId).toBe("example.com");
    expect(loadConfig({ REFRESH_REUSE_GRACE_S: "0" }).REFRESH_REUSE_GRACE_S).toBe(0);
  });

  test("an unreachable REDIS_URL stops the start with an error naming REDIS_URL", async () => {
    const database = await testDatabase();
    try {
      const error = await buildAuthServer({ REDIS_URL: "redis://127.0.0.1:1", BACKEND_TIMEOUT_MS: 500, LOG_LEVEL: "silent" }, { database }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain("REDIS_URL");
    } finally {
      await database.close();
    }
  });

  test("the process prints one line naming the variable and exits 1", async () => {
    for (const [variable, value] of [
      ["APP_URL", "ftp://x"],
      ["REDIS_URL", "redis://127.0.0.1:1"],
    ] as const) {
      const child = Bun.spawn(["bun", "run", join(import.meta.dir, "..", "src", "index.ts")], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DATA_DIR: join(tmpdir(), `auth-settings-${crypto.randomUUID()}`), BACKEND_TIMEOUT_MS: "500", LOG_LEVEL: "silent", [variable]: value },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
      expect(code).toBe(1);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toContain(variable);
    }
  }, 60_000);
});
