import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/** Checklist: security headers on every answer, errors included, and a CORS policy that never trusts strangers. */
const PASSWORD = "plum-kettle-orbit-93";
const EVIL = "https://evil.example";
let server: TestServer;
let configured: TestServer;
let routes: Array<{ method: string; path: string }>;

beforeAll(async () => {
  [server, configured] = await Promise.all([
    createTestServer(),
    createTestServer({ CORS_ORIGINS: "https://app.example,https://admin.example" }),
  ]);
  const spec = await server.request("GET", "/docs/json");
  routes = [];
  for (const [path, ops] of Object.entries(spec.body.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) if (["get", "post", "patch", "delete"].includes(method)) routes.push({ method: method.toUpperCase(), path });
  }
});
afterAll(async () => {
  await Promise.all([server.close(), configured.close()]);
});

const noStore = (res: TestResponse) => expect(res.headers.get("cache-control")).toContain("no-store");

describe("Cache-Control: no-store on anything with a token", () => {
  test("register, login, refresh, anonymous, code verify, session and me answers are no-store", async () => {
    const email = uniqueEmail("hdr");
    const reg = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(reg.status).toBe(201);
    noStore(reg);
    const login = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    noStore(login);
    noStore(await server.request("POST", "/auth/refresh", { body: { refreshToken: login.body.refreshToken } }));
    noStore(await server.request("POST", "/auth/anonymous"));
    noStore(await server.request("GET", "/auth/session", { token: login.body.accessToken }));
    noStore(await server.request("GET", "/auth/me", { token: login.body.accessToken }));
    const magic = uniqueEmail("hdr-code");
    await server.request("POST", "/auth/code/request", { body: { email: magic } });
    await Bun.sleep(0);
    const code = /\b(\d{6})\b/.exec(server.mailer.last(magic)?.text ?? "")?.[1];
    const verified = await server.request("POST", "/auth/code/verify", { body: { email: magic, code } });
    expect(verified.status).toBe(200);
    noStore(verified);
  });

  test("TOTP setup (a secret) and recovery codes are no-store", async () => {
    const { tokens } = await createSignedInUser(server);
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: tokens.accessToken });
    expect(setup.status).toBe(200);
    noStore(setup);
  });
});

describe("X-Content-Type-Options: nosniff on every answer", () => {
  test("every route of the spec, signed in and not, errors included", async () => {
    const { tokens } = await createSignedInUser(server);
    for (const { method, path } of routes) {
      const url = path.replace(/\{[^}]+\}/g, "00000000-0000-7000-8000-000000000000");
      for (const token of [undefined, tokens.accessToken]) {
        const res = await server.request(method, url, { token, body: method === "GET" ? undefined : { x: 1 } });
        expect({ route: `${method} ${path}`, nosniff: res.headers.get("x-content-type-options") }).toEqual({ route: `${method} ${path}`, nosniff: "nosniff" });
        if (res.status >= 400) noStore(res);
      }
    }
  });

  test("unknown routes, malformed JSON, 413 and 415 answers too", async () => {
    const answers = [
      await server.request("GET", "/auth/nope"),
      await server.request("POST", "/auth/login", { body: "{not json" }),
      await server.request("POST", "/auth/login", { body: "x".repeat(70 * 1024) }),
      await server.request("POST", "/auth/login", { body: "<xml/>", headers: { "content-type": "application/xml" } }),
      await server.request("GET", "/health"),
      await server.request("GET", "/.well-known/jwks.json"),
    ];
    expect(answers.map((a) => a.status)).toEqual([404, 400, 413, 415, 200, 200]);
    for (const a of answers) {
      expect(a.headers.get("x-content-type-options")).toBe("nosniff");
      expect(a.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });
});

function expectNotEchoed(res: TestResponse, origin: string) {
  const allowed = res.headers.get("access-control-allow-origin");
  expect(allowed === origin || allowed === "*").toBe(false);
}

describe("CORS", () => {
  test("default: a preflight from an untrusted origin is not allowed", async () => {
    const res = await server.request("OPTIONS", "/auth/login", {
      headers: { origin: EVIL, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
    });
    expectNotEchoed(res, EVIL);
  });

  test("default: a simple request with credentials from an untrusted origin is not echoed", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("GET", "/auth/me", { token: tokens.accessToken, headers: { origin: EVIL, cookie: "a=b" } });
    expectNotEchoed(res, EVIL);
    const login = await server.request("POST", "/auth/login", { body: { email: uniqueEmail(), password: PASSWORD }, headers: { origin: EVIL } });
    expectNotEchoed(login, EVIL);
    expect(login.headers.get("access-control-allow-credentials") === "true" && login.headers.get("access-control-allow-origin") !== null).toBe(false);
  });

  test("default: the null origin and look-alike origins are not trusted", async () => {
    for (const origin of ["null", "http://localhost:3000.evil.example", "http://evil.localhost:3000", "https://localhost:3000"]) {
      expectNotEchoed(await server.request("OPTIONS", "/auth/login", { headers: { origin, "access-control-request-method": "POST" } }), origin);
    }
  });

  test("default: the APP_URL origin is allowed, with credentials", async () => {
    const res = await server.request("OPTIONS", "/auth/login", { headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
  });

  test("a browser app may read x-request-id and Retry-After, and no request header name is echoed as exposed", async () => {
    const res = await server.request("GET", "/health", { headers: { origin: "http://localhost:3000", "x-secret-header-name": "1" } });
    expect(res.headers.get("access-control-expose-headers")).toBe("x-request-id, retry-after");
  });

  test("a configured CORS_ORIGINS list works: listed origins allowed with credentials, others not", async () => {
    for (const origin of ["https://app.example", "https://admin.example"]) {
      const pre = await configured.request("OPTIONS", "/auth/login", { headers: { origin, "access-control-request-method": "POST" } });
      expect(pre.headers.get("access-control-allow-origin")).toBe(origin);
      expect(pre.headers.get("access-control-allow-credentials")).toBe("true");
      const simple = await configured.request("GET", "/health", { headers: { origin } });
      expect(simple.headers.get("access-control-allow-origin")).toBe(origin);
    }
    expectNotEchoed(await configured.request("OPTIONS", "/auth/login", { headers: { origin: EVIL, "access-control-request-method": "POST" } }), EVIL);
    expectNotEchoed(await configured.request("GET", "/health", { headers: { origin: EVIL } }), EVIL);
    expectNotEchoed(await configured.request("GET", "/health", { headers: { origin: "http://localhost:3000" } }), "http://localhost:3000");
  });
});
