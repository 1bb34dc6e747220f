import { availableParallelism } from "node:os";
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../src/config";

describe("settings", () => {
  test("defaults follow the contract", () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(3000);
    expect(c.HOST).toBe("0.0.0.0");
    expect(c.AUTH_BASE_PATH).toBe("/auth");
    expect(c.APP_URL).toBe("http://localhost:3000");
    expect(c.JWT_ALG).toBe("EdDSA");
    expect(c.issuer).toBe("http://localhost:3000");
    expect(c.audience).toBe("http://localhost:3000");
    expect([c.ACCESS_TOKEN_TTL_S, c.REFRESH_TOKEN_TTL_S, c.REFRESH_REUSE_GRACE_S]).toEqual([900, 2592000, 10]);
    expect(c.REQUIRE_EMAIL_VERIFICATION).toBe(false);
    expect([c.PASSWORD_MIN_LENGTH, c.PASSWORD_REQUIRE_COMPLEXITY]).toEqual([8, false]);
    expect([c.PASSWORD_HASH_MEMORY_KIB, c.PASSWORD_HASH_TIME_COST, c.PASSWORD_HASH_CONCURRENCY]).toEqual([19456, 2, availableParallelism()]);
    expect(c.MAIL_FROM).toBe("Auth <no-reply@localhost>");
    expect(c.trustedRedirectOrigins).toEqual(["http://localhost:3000"]);
    expect([...c.plugins].sort()).toEqual(["anonymous", "invitations", "magic-code", "mfa", "oauth", "password", "teams"]);
    expect(c.RATE_LIMIT_LOGIN_IP).toEqual({ count: 20, windowS: 60 });
    expect(c.RATE_LIMIT_LOGIN_EMAIL).toEqual({ count: 5, windowS: 60 });
    expect(c.RATE_LIMIT_CODE_EMAIL).toEqual({ count: 3, windowS: 600 });
    expect(c.RATE_LIMIT_EMAIL_CHECK_IP).toEqual({ count: 10, windowS: 60 });
    expect(c.RATE_LIMIT_REFRESH_SESSION).toEqual({ count: 60, windowS: 60 });
    expect(c.TRUST_PROXY).toBe(false);
    expect(c.DEMO_MODE).toBe(false);
    expect(c.LOG_LEVEL).toBe("info");
    expect(c.webauthn).toEqual({ rpId: "localhost", rpName: "localhost", origin: "http://localhost:3000" });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.DATA_DIR).toBe("./data");
  });

  test("environment strings are parsed into typed settings", () => {
    const c = loadConfig({
      PORT: "8080",
      AUTH_PLUGINS: "password, mfa",
      REQUIRE_EMAIL_VERIFICATION: "true",
      TRUSTED_REDIRECT_ORIGINS: "https://a.example/path,https://b.example:8443",
      ADMIN_EMAILS: "root@example.com",
      RATE_LIMIT_LOGIN_IP: "3/10",
      DATABASE_URL: "",
    });
    expect(c.PORT).toBe(8080);
    expect([...c.plugins]).toEqual(["password", "mfa"]);
    expect(c.REQUIRE_EMAIL_VERIFICATION).toBe(true);
    expect(c.trustedRedirectOrigins).toEqual(["https://a.example", "https://b.example:8443"]);
    expect(c.ADMIN_EMAILS).toEqual(["root@example.com"]);
    expect(c.RATE_LIMIT_LOGIN_IP).toEqual({ count: 3, windowS: 10 });
    expect(c.DATABASE_URL).toBeUndefined();
  });

  test("a wrong setting names its variable", () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ PORT: "abc" }, "PORT"],
      [{ APP_URL: "not a url" }, "APP_URL"],
      [{ JWT_ALG: "RS256" }, "JWT_ALG"],
      [{ JWT_ALG: "HS256" }, "JWT_SECRET"],
      [{ JWT_ALG: "HS256", JWT_SECRET: "short" }, "JWT_SECRET"],
      [{ AUTH_PLUGINS: "password,nope" }, "AUTH_PLUGINS"],
      [{ RATE_LIMIT_LOGIN_EMAIL: "five per minute" }, "RATE_LIMIT_LOGIN_EMAIL"],
      [{ RATE_LIMIT_LOGIN_EMAIL: "5/0" }, "RATE_LIMIT_LOGIN_EMAIL"],
      [{ REQUIRE_EMAIL_VERIFICATION: "yes" }, "REQUIRE_EMAIL_VERIFICATION"],
      [{ CAPTCHA_PROVIDER: "turnstile" }, "CAPTCHA_SECRET"],
      [{ AUTH_BASE_PATH: "auth/" }, "AUTH_BASE_PATH"],
      [{ PASSWORD_HASH_CONCURRENCY: "0" }, "PASSWORD_HASH_CONCURRENCY"],
    ];
    for (const [env, variable] of cases) {
      let caught: unknown;
      try {
        loadConfig(env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).variable).toBe(variable);
      expect((caught as ConfigError).message).toStartWith(`Invalid setting ${variable}:`);
    }
  });

  test("a secret never appears in the error", () => {
    try {
      loadConfig({ JWT_ALG: "HS256", JWT_SECRET: "tooshort-secret" });
      throw new Error("should have failed");
    } catch (error) {
      expect((error as Error).message).not.toContain("tooshort-secret");
    }
  });
});

describe("bun run start", () => {
  test("a wrong setting stops the server with one line naming the variable", async () => {
    const proc = Bun.spawn(["bun", "run", "src/index.ts"], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, PORT: "not-a-port", DATABASE_URL: "", REDIS_URL: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await proc.exited;
    const stderr = (await new Response(proc.stderr).text()).trim();
    expect(code).toBe(1);
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toStartWith("Invalid setting PORT:");
  });
});
