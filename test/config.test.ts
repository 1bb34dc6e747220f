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
    expect([...c.plugins].sort()).toEqual(["admin", "anonymous", "invitations", "magic-code", "mfa", "oauth", "password", "teams"]);
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
      [{ PORT: "70000" }, "PORT"],
      [{ ACCESS_TOKEN_TTL_S: "-1" }, "ACCESS_TOKEN_TTL_S"],
      [{ REFRESH_TOKEN_TTL_S: "1.5" }, "REFRESH_TOKEN_TTL_S"],
      [{ DATABASE_URL: "not-a-url" }, "DATABASE_URL"],
      [{ DATABASE_URL: "mysql://db.example/app" }, "DATABASE_URL"],
      [{ REDIS_URL: "localhost:6379" }, "REDIS_URL"],
      [{ SMTP_URL: "mail.example.com" }, "SMTP_URL"],
      [{ TRUSTED_REDIRECT_ORIGINS: "https://app.example.com,notaurl" }, "TRUSTED_REDIRECT_ORIGINS"],
      [{ CORS_ORIGINS: "ftp://files.example.com" }, "CORS_ORIGINS"],
      [{ WEBAUTHN_ORIGIN: "app.example.com" }, "WEBAUTHN_ORIGIN"],
      [{ CAPTCHA_VERIFY_URL: "verify" }, "CAPTCHA_VERIFY_URL"],
      [{ OIDC_ISSUER: "issuer" }, "OIDC_ISSUER"],
      [{ INVITATION_PATH: "accept" }, "INVITATION_PATH"],
      [{ PASSWORD_RESET_PATH: "reset" }, "PASSWORD_RESET_PATH"],
      // A provider half set up is a mistake to report, not a provider silently off.
      [{ OAUTH_GOOGLE_CLIENT_ID: "id" }, "OAUTH_GOOGLE_CLIENT_SECRET"],
      [{ OAUTH_GITHUB_CLIENT_SECRET: "secret" }, "OAUTH_GITHUB_CLIENT_ID"],
      [{ OIDC_ISSUER: "https://id.example.com", OIDC_CLIENT_ID: "id" }, "OIDC_CLIENT_SECRET"],
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

  test("an empty variable means its default, as if it were unset", () => {
    const c = loadConfig({ PORT: "", HOST: "", ACCESS_TOKEN_TTL_S: "", DATABASE_URL: "", REDIS_URL: "" });
    expect(c.PORT).toBe(3000);
    expect(c.HOST).toBe("0.0.0.0");
    expect(c.ACCESS_TOKEN_TTL_S).toBe(900);
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.REDIS_URL).toBeUndefined();
  });

  test("a password in a malformed connection URL never appears in the error", () => {
    let caught: unknown;
    try {
      loadConfig({ DATABASE_URL: "mysql://app:hunter2-secret@db/app" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).not.toContain("hunter2-secret");
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
  /** Starts the server with these settings; answers its exit code and what it wrote to stderr. */
  async function start(env: Record<string, string>) {
    const proc = Bun.spawn(["bun", "run", "src/index.ts"], { cwd: `${import.meta.dir}/..`, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
    const code = await proc.exited;
    return { code, stderr: (await new Response(proc.stderr).text()).trim() };
  }

  test("a wrong setting stops the server with one line naming the variable", async () => {
    const { code, stderr } = await start({ PORT: "not-a-port", DATABASE_URL: "", REDIS_URL: "" });
    expect(code).toBe(1);
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toStartWith("Invalid setting PORT:");
  });

  test("a database it cannot reach stops it with one line naming DATABASE_URL, and no password", async () => {
    const { code, stderr } = await start({ DATABASE_URL: "postgres://app:hunter2-secret@127.0.0.1:1/app", REDIS_URL: "", LOG_LEVEL: "silent" });
    expect(code).toBe(1);
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toStartWith("Failed to start: cannot reach the database at DATABASE_URL");
    expect(stderr).not.toContain("hunter2-secret");
  }, 30_000);
});
