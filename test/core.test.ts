import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { Elysia } from "elysia";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { createAuthServer } from "../src/server";
import { createTestServer, type TestServer, testDatabase, testStore } from "./support/server";
import { createSignedInUser, movableClock } from "./support/users";

let server: TestServer;
const clock = movableClock();

beforeAll(async () => {
  server = await createTestServer({ AUTH_PLUGINS: "" }, { clock });
});
afterAll(async () => {
  await server.close();
});

function expectErrorShape(body: unknown) {
  expect(body).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
  const text = JSON.stringify(body);
  expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)|stack|SELECT |INSERT |node_modules/i);
}

describe("GET /auth/me", () => {
  test("returns the signed-in user in the contract's shape", async () => {
    const { user, tokens } = await createSignedInUser(server, { firstName: "Ada" });
    const res = await server.request("GET", "/auth/me", { token: tokens.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: user.id,
      email: user.email,
      emailVerified: true,
      username: null,
      firstName: "Ada",
      lastName: null,
      image: null,
      roles: ["user"],
      isAnonymous: false,
      mfaEnabled: false,
      createdAt: user.createdAt.toISOString(),
    });
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("401 without a token, with a malformed one, or with a token of the wrong shape", async () => {
    for (const authorization of [undefined, "Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer a b"]) {
      const res = await server.request("GET", "/auth/me", { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expectErrorShape(res.body);
    }
  });

  test("the Bearer scheme is case-insensitive; the token itself is not", async () => {
    const { user, tokens } = await createSignedInUser(server);
    for (const scheme of ["bearer", "BEARER", "BeArEr"]) {
      const res = await server.request("GET", "/auth/me", { headers: { authorization: `${scheme} ${tokens.accessToken}` } });
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(user.id);
    }
    const flipped = tokens.accessToken.replace(/[a-z]/, (c) => c.toUpperCase());
    expect((await server.request("GET", "/auth/me", { headers: { authorization: `Bearer ${flipped}` } })).status).toBe(401);
  });

  test("refuses alg none, a forged HS256 token, a stripped signature, jku/jwk headers and an unknown kid", async () => {
    const { tokens } = await createSignedInUser(server);
    const [h, p] = tokens.accessToken.split(".");
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const payload = decodeJwt(tokens.accessToken);
    const header = decodeProtectedHeader(tokens.accessToken);
    const forgedHs = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: header.kid })
      .sign(new TextEncoder().encode("x".repeat(32)));
    const candidates = [
      `${b64({ alg: "none", typ: "at+jwt" })}.${p}.`,
      `${h}.${p}.`,
      forgedHs,
      `${b64({ ...header, jku: "http://evil.example/jwks" })}.${p}.${tokens.accessToken.split(".")[2]}`,
      `${b64({ ...header, kid: "unknown" })}.${p}.${tokens.accessToken.split(".")[2]}`,
      `${b64({ ...header, typ: "JWT" })}.${p}.${tokens.accessToken.split(".")[2]}`,
    ];
    for (const token of candidates) {
      const res = await server.request("GET", "/auth/me", { token });
      expect(res.status).toBe(401);
    }
  });

  test("an expired access token is refused", async () => {
    const local = movableClock();
    const s = await createTestServer({ AUTH_PLUGINS: "", ACCESS_TOKEN_TTL_S: 60 }, { clock: local });
    try {
      const { tokens } = await createSignedInUser(s);
      expect((await s.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(200);
      local.advance(61);
      const res = await s.request("GET", "/auth/me", { token: tokens.accessToken });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_TOKEN");
    } finally {
      await s.close();
    }
  });
});

describe("access tokens and JWKS", () => {
  test("EdDSA tokens carry the contract's claims and verify against /.well-known/jwks.json", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const jwks = await server.request("GET", "/.well-known/jwks.json");
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys[0]).toEqual(expect.objectContaining({ kty: "OKP", crv: "Ed25519", kid: expect.any(String), alg: "EdDSA" }));
    expect(jwks.body.keys[0].d).toBeUndefined();
    const { payload, protectedHeader } = await jwtVerify(tokens.accessToken, createLocalJWKSet(jwks.body), {
      issuer: "http://localhost:3000",
      audience: "http://localhost:3000",
      currentDate: clock.now(),
    });
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(protectedHeader.typ).toBe("at+jwt");
    expect(payload.sub).toBe(user.id);
    expect(payload.sid).toEqual(expect.any(String));
    expect(payload.roles).toEqual(["user"]);
    expect(payload.amr).toEqual(["pwd"]);
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(tokens.expiresIn).toBe(900);
    expect(tokens.refreshToken.length).toBeGreaterThanOrEqual(43);
  });

  test("keys are made once and kept: a second server on the same database signs with the same kid", async () => {
    const database = await testDatabase();
    const first = await createTestServer({ AUTH_PLUGINS: "" }, { database });
    const second = await createTestServer({ AUTH_PLUGINS: "" }, { database });
    try {
      const a = await first.request("GET", "/.well-known/jwks.json");
      const b = await second.request("GET", "/.well-known/jwks.json");
      expect(b.body.keys.map((k: { kid: string }) => k.kid)).toContain(a.body.keys[0].kid);
      const { tokens } = await createSignedInUser(first);
      expect((await second.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(200);
    } finally {
      await first.close();
      await second.close();
    }
  });

  test("HS256 with JWT_SECRET, and an EdDSA token is refused by it", async () => {
    const hs = await createTestServer({ AUTH_PLUGINS: "", JWT_ALG: "HS256", JWT_SECRET: "s".repeat(40) });
    try {
      const { tokens } = await createSignedInUser(hs);
      expect(decodeProtectedHeader(tokens.accessToken).alg).toBe("HS256");
      expect((await hs.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(200);
      const { tokens: ed } = await createSignedInUser(server);
      expect((await hs.request("GET", "/auth/me", { token: ed.accessToken })).status).toBe(401);
      expect((await server.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(401);
    } finally {
      await hs.close();
    }
  });
});

describe("PATCH /auth/me", () => {
  test("updates names, username and image; ignores fields it does not own", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", {
      token: tokens.accessToken,
      body: { firstName: "Grace", lastName: "Hopper", username: `grace_${user.id.slice(-6)}`, image: "https://img.example/a.png", roles: ["admin"], emailVerified: false, id: "x", __proto__: { admin: true } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(
      expect.objectContaining({ id: user.id, firstName: "Grace", lastName: "Hopper", image: "https://img.example/a.png", roles: ["user"], emailVerified: true }),
    );
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  test("accepts form bodies", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, form: { firstName: "Form", roles: "admin" } });
    expect(res.status).toBe(200);
    expect(res.body.firstName).toBe("Form");
    expect(res.body.roles).toEqual(["user"]);
  });

  test("400 VALIDATION_ERROR with details naming the field, never the value", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body: { image: "javascript:alert(1)", firstName: 42 } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("VALIDATION_ERROR");
    const paths = res.body.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(["firstName", "image"]);
    expect(res.text).not.toContain("javascript:");
  });

  test("409 USERNAME_TAKEN, case-insensitively", async () => {
    const name = `taken_${crypto.randomUUID().slice(0, 8)}`;
    await createSignedInUser(server, { username: name });
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body: { username: name.toUpperCase() } });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("USERNAME_TAKEN");
  });
});

describe("DELETE /auth/me", () => {
  test("deletes the user and all their data; their tokens die at once", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const other = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
    const res = await server.request("DELETE", "/auth/me", { token: tokens.accessToken });
    expect(res.status).toBe(204);
    expect(await server.ctx.users.findById(user.id)).toBeUndefined();
    expect((await server.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(401);
    expect((await server.request("GET", "/auth/session", { token: other.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: other.refreshToken } })).status).toBe(401);
    const events = await server.ctx.audit.listForUser(user.id, { limit: 10 });
    expect(events.map((e) => e.type)).toContain("account_deleted");
  });

  test("a sign-in racing the deletion leaves no working token, and one finishing after it is 401, not 500", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const meta = { ip: null, userAgent: null };
    // The racing sign-in makes its session after the sessions were revoked, before the user row goes.
    const realDelete = server.ctx.users.delete.bind(server.ctx.users);
    let raced: Awaited<ReturnType<typeof server.ctx.sessions.create>> | undefined;
    const spy = spyOn(server.ctx.users, "delete").mockImplementation(async (...args: Parameters<typeof realDelete>) => {
      raced = await server.ctx.sessions.create(user, { amr: ["pwd"], meta });
      return realDelete(...args);
    });
    try {
      expect((await server.request("DELETE", "/auth/me", { token: tokens.accessToken })).status).toBe(204);
    } finally {
      spy.mockRestore();
    }
    // GET /auth/sessions reads nothing of the user's row: only the revocation can refuse it.
    const listed = await server.request("GET", "/auth/sessions", { token: raced?.accessToken });
    expect(listed.status).toBe(401);
    expect(listed.body.code).toBe("SESSION_REVOKED");
    // And a sign-in that gets to its insert only now finds nobody to make a session for.
    const late = await server.ctx.sessions.create(user, { amr: ["pwd"], meta }).catch((error: unknown) => error);
    expect(late).toMatchObject({ status: 401, code: "SESSION_REVOKED" });
  });
});

describe("GET /auth/session", () => {
  test("answers valid, the user and the session", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const res = await server.request("GET", "/auth/session", { token: tokens.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.valid).toBe(true);
    expect(res.body.user.id).toBe(user.id);
    expect(res.body.session).toEqual({
      id: decodeJwt(tokens.accessToken).sid,
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      amr: ["pwd"],
      teamId: null,
    });
  });

  test("401 after logout", async () => {
    const { tokens } = await createSignedInUser(server);
    expect((await server.request("POST", "/auth/logout", { token: tokens.accessToken })).status).toBe(204);
    const res = await server.request("GET", "/auth/session", { token: tokens.accessToken });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("SESSION_REVOKED");
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } })).status).toBe(401);
  });
});

describe("POST /auth/refresh", () => {
  test("rotates: a new pair, the old token then works only within the grace window", async () => {
    const { tokens } = await createSignedInUser(server);
    const first = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
    expect(first.status).toBe(200);
    expect(first.body.refreshToken).not.toBe(tokens.refreshToken);
    expect(first.body.tokenType).toBe("Bearer");
    expect(decodeJwt(first.body.accessToken).sid).toBe(decodeJwt(tokens.accessToken).sid);
    const again = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
    expect(again.status).toBe(200);
    expect(again.body.refreshToken).toBe(first.body.refreshToken);
    expect(again.body.accessToken).toBe(first.body.accessToken);
    const next = await server.request("POST", "/auth/refresh", { form: { refreshToken: first.body.refreshToken } });
    expect(next.status).toBe(200);
  });

  test("20 concurrent presentations of one token get one successor pair", async () => {
    const { tokens } = await createSignedInUser(server);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
    const successor = results[0]!.body.refreshToken;
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: successor } })).status).toBe(200);
  });

  test("reuse after the grace window is theft: the whole session is revoked", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const first = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
    clock.advance(11);
    const reuse = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe("REFRESH_TOKEN_REUSED");
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: first.body.refreshToken } })).status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token: first.body.accessToken })).status).toBe(401);
    const events = await server.ctx.audit.listForUser(user.id, { limit: 10 });
    expect(events.map((e) => e.type)).toContain("refresh_reuse");
  });

  test("unknown, malformed and missing tokens", async () => {
    for (const body of [{ refreshToken: "x".repeat(43) }, { refreshToken: "short" }]) {
      const res = await server.request("POST", "/auth/refresh", { body });
      expect(res.status).toBe(401);
      expectErrorShape(res.body);
    }
    const missing = await server.request("POST", "/auth/refresh", { body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.details[0].path).toBe("refreshToken");
    const wrongType = await server.request("POST", "/auth/refresh", { body: { refreshToken: ["a", "b"] } });
    expect(wrongType.status).toBe(400);
  });

  test("an access token is refused as a refresh token, and a refresh token as an access token", async () => {
    const { tokens } = await createSignedInUser(server);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.accessToken } })).status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token: tokens.refreshToken })).status).toBe(401);
  });

  test("the idle timeout and the absolute lifetime end a session", async () => {
    const local = movableClock();
    const s = await createTestServer({ AUTH_PLUGINS: "", SESSION_IDLE_TIMEOUT_S: 3600, SESSION_MAX_AGE_S: 7200 }, { clock: local });
    try {
      const idle = await createSignedInUser(s);
      local.advance(3601);
      expect((await s.request("POST", "/auth/refresh", { body: { refreshToken: idle.tokens.refreshToken } })).status).toBe(401);
      const busy = await createSignedInUser(s);
      let refreshToken = busy.tokens.refreshToken;
      for (let i = 0; i < 3; i++) {
        local.advance(3000);
        const res = await s.request("POST", "/auth/refresh", { body: { refreshToken } });
        if (i < 2) {
          expect(res.status).toBe(200);
          refreshToken = res.body.refreshToken;
        } else expect(res.status).toBe(401);
      }
    } finally {
      await s.close();
    }
  });

  test("RATE_LIMIT_REFRESH_SESSION: 429 with Retry-After", async () => {
    const s = await createTestServer({ AUTH_PLUGINS: "", RATE_LIMIT_REFRESH_SESSION: "2/60" });
    try {
      const { tokens } = await createSignedInUser(s);
      let refreshToken = tokens.refreshToken;
      for (let i = 0; i < 2; i++) {
        const res = await s.request("POST", "/auth/refresh", { body: { refreshToken } });
        expect(res.status).toBe(200);
        refreshToken = res.body.refreshToken;
      }
      const limited = await s.request("POST", "/auth/refresh", { body: { refreshToken } });
      expect(limited.status).toBe(429);
      expect(limited.body.code).toBe("RATE_LIMITED");
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });
});

describe("sessions", () => {
  test("list marks the current session; DELETE one; DELETE all others", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const second = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: "198.51.100.2", userAgent: "phone" } });
    const third = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
    const list = await server.request("GET", "/auth/sessions", { token: tokens.accessToken });
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(3);
    const current = list.body.filter((s: { current: boolean }) => s.current);
    expect(current).toHaveLength(1);
    expect(current[0]).toEqual({ id: decodeJwt(tokens.accessToken).sid, createdAt: expect.any(String), lastUsedAt: expect.any(String), ip: "203.0.113.7", userAgent: "test-agent", current: true });

    const secondId = decodeJwt(second.accessToken).sid as string;
    expect((await server.request("DELETE", `/auth/sessions/${secondId}`, { token: tokens.accessToken })).status).toBe(204);
    expect((await server.request("GET", "/auth/me", { token: second.accessToken })).status).toBe(401);
    expect((await server.request("DELETE", `/auth/sessions/${secondId}`, { token: tokens.accessToken })).status).toBe(404);

    expect((await server.request("DELETE", "/auth/sessions", { token: tokens.accessToken })).status).toBe(204);
    expect((await server.request("GET", "/auth/me", { token: third.accessToken })).status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(200);
    const after = await server.request("GET", "/auth/sessions", { token: tokens.accessToken });
    expect(after.body).toHaveLength(1);
  });

  test("another user's session id, and nonsense ids, are 404", async () => {
    const a = await createSignedInUser(server);
    const b = await createSignedInUser(server);
    const bSid = decodeJwt(b.tokens.accessToken).sid as string;
    for (const id of [bSid, "not-a-uuid", "00000000-0000-0000-0000-000000000000", "%27%20or%201%3D1"]) {
      const res = await server.request("DELETE", `/auth/sessions/${id}`, { token: a.tokens.accessToken });
      expect(res.status).toBe(404);
    }
    expect((await server.request("GET", "/auth/me", { token: b.tokens.accessToken })).status).toBe(200);
  });

  test("logout and revocations are audited", async () => {
    const { user, tokens } = await createSignedInUser(server);
    await server.request("POST", "/auth/logout", { token: tokens.accessToken });
    const events = await server.ctx.audit.listForUser(user.id, { limit: 10 });
    expect(events[0]).toEqual(expect.objectContaining({ type: "logout", userId: user.id }));
  });

  test("signIn records a sign_in event with IP and user agent", async () => {
    const user = await server.ctx.users.create({ email: `audit-${crypto.randomUUID().slice(0, 8)}@example.com` });
    await server.ctx.signIn(user, { amr: ["pwd"], meta: { ip: "192.0.2.1", userAgent: "ua" }, method: "test" });
    const [event] = await server.ctx.audit.listForUser(user.id, { limit: 1 });
    expect(event).toEqual(expect.objectContaining({ type: "sign_in", ip: "192.0.2.1", userAgent: "ua" }));
  });
});

describe("requests the contract refuses", () => {
  test("415 for other media types", async () => {
    const { tokens } = await createSignedInUser(server);
    for (const type of ["text/plain", "application/xml", "multipart/form-data; boundary=x"]) {
      const res = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body: "firstName=x", headers: { "content-type": type } });
      expect(res.status).toBe(415);
      expect(res.body.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
  });

  test("media types are case-insensitive, and a +json type is JSON: each body is read, not refused or dropped", async () => {
    const { tokens } = await createSignedInUser(server);
    const cases: Array<[string, string]> = [
      ["APPLICATION/JSON", JSON.stringify({ firstName: "Upper" })],
      ["Application/Json; Charset=UTF-8", JSON.stringify({ firstName: "Mixed" })],
      ["application/merge-patch+json", JSON.stringify({ firstName: "Merge" })],
      ["APPLICATION/X-WWW-FORM-URLENCODED", "firstName=Form"],
    ];
    for (const [type, body] of cases) {
      const res = await server.request("PATCH", "/auth/me", { token: tokens.accessToken, body, headers: { "content-type": type } });
      expect(res.status).toBe(200);
      expect(res.body.firstName).toBe(type.startsWith("APPLICATION/X") ? "Form" : (JSON.parse(body) as { firstName: string }).firstName);
    }
  });

  test("413 for bodies over 64 KiB", async () => {
    const res = await server.request("POST", "/auth/refresh", { body: { refreshToken: "x".repeat(70 * 1024) } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe("PAYLOAD_TOO_LARGE");
  });

  test("malformed JSON is 400 VALIDATION_ERROR", async () => {
    const res = await server.request("POST", "/auth/refresh", { body: '{"refreshToken": ' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("VALIDATION_ERROR");
    expectErrorShape(res.body);
  });

  test("unknown routes are 404 in the error shape", async () => {
    const res = await server.request("GET", "/auth/nope");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ code: "NOT_FOUND", message: "Not found" });
  });

  test("__proto__ in a body pollutes nothing", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", {
      token: tokens.accessToken,
      body: '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "firstName": "P"}',
    });
    expect(res.status).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await server.request("GET", "/auth/me", { token: tokens.accessToken })).body.firstName).toBe("P");
  });
});

describe("health, docs and CORS", () => {
  test("GET /health", async () => {
    const res = await server.request("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", db: "ok", kv: "ok" });
  });

  test("GET /health is 503 naming the part that is down", async () => {
    const kv = testStore();
    const down = Object.assign(Object.create(kv), { ping: () => Promise.reject(new Error("down")) });
    const s = await createTestServer({ AUTH_PLUGINS: "" }, { kv: down });
    try {
      const res = await s.request("GET", "/health");
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ status: "unavailable", db: "ok", kv: "down" });
    } finally {
      await s.close();
    }
  });

  test("OpenAPI at /docs/json lists every core route with its body", async () => {
    const res = await server.request("GET", "/docs/json");
    expect(res.status).toBe(200);
    const paths = res.body.paths;
    for (const p of ["/auth/me", "/auth/session", "/auth/refresh", "/auth/logout", "/auth/sessions", "/auth/sessions/{id}", "/health"]) {
      expect(paths[p]).toBeDefined();
    }
    expect(Object.keys(paths["/auth/me"])).toEqual(expect.arrayContaining(["get", "patch", "delete"]));
    const refreshBody = JSON.stringify(paths["/auth/refresh"].post.requestBody);
    expect(refreshBody).toContain("refreshToken");
    expect((await server.request("GET", "/docs")).status).toBe(200);
  });

  test("the spec is built without a warning, keeps bodies with form transforms, and lists /.well-known/jwks.json", async () => {
    const fresh = await createTestServer();
    const warn = spyOn(console, "warn");
    try {
      const res = await fresh.request("GET", "/docs/json");
      expect(res.status).toBe(200);
      expect(warn).not.toHaveBeenCalled();
      const paths = res.body.paths;
      expect(paths["/.well-known/jwks.json"].get).toBeDefined();
      // `dashboard` takes "true"/"false" from a form: a transform, which dropped the whole body from the spec before.
      const codeBody = JSON.stringify(paths["/auth/code/request"].post.requestBody);
      expect(codeBody).toContain("dashboard");
      expect(codeBody).toContain("application/x-www-form-urlencoded");
    } finally {
      warn.mockRestore();
      await fresh.close();
    }
  });

  test("CORS answers trusted origins and never echoes an untrusted one", async () => {
    const preflight = (origin: string) =>
      server.app.handle(
        new Request("http://localhost/auth/me", {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
        }),
      );
    const trusted = await preflight("http://localhost:3000");
    expect(trusted.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(trusted.headers.get("access-control-allow-credentials")).toBe("true");
    const untrusted = await preflight("https://evil.example");
    expect(untrusted.headers.get("access-control-allow-origin")).not.toBe("https://evil.example");
    expect(untrusted.headers.get("access-control-allow-origin")).not.toBe("*");
  });
});

describe("createAuthServer", () => {
  test("mounts inside another Elysia app with .use()", async () => {
    const auth = await createAuthServer({ AUTH_PLUGINS: "", LOG_LEVEL: "silent" }, { database: await testDatabase(), kv: testStore() });
    const host = new Elysia().get("/hello", () => ({ hi: true })).use(auth);
    expect(await (await host.handle(new Request("http://localhost/hello"))).json()).toEqual({ hi: true });
    const health = await host.handle(new Request("http://localhost/health"));
    expect(health.status).toBe(200);
    const me = await host.handle(new Request("http://localhost/auth/me"));
    expect(me.status).toBe(401);
  });

  test("AUTH_BASE_PATH moves every auth route", async () => {
    const s = await createTestServer({ AUTH_PLUGINS: "", AUTH_BASE_PATH: "/api/auth" });
    try {
      const { tokens } = await createSignedInUser(s);
      expect((await s.request("GET", "/api/auth/me", { token: tokens.accessToken })).status).toBe(200);
      expect((await s.request("GET", "/auth/me", { token: tokens.accessToken })).status).toBe(404);
    } finally {
      await s.close();
    }
  });
});

describe("GET /auth/me/activity", () => {
  test("the user's own events, newest first, paginated", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const other = await createSignedInUser(server);
    for (let i = 0; i < 3; i++) {
      await server.ctx.audit.record({ type: "sign_in", userId: user.id, meta: { ip: `192.0.2.${i}`, userAgent: "ua" } });
    }
    await server.ctx.audit.record({ type: "sign_in", userId: other.user.id, meta: { ip: "198.51.100.9", userAgent: "other" } });
    const first = await server.request("GET", "/auth/me/activity?limit=2", { token: tokens.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.events).toHaveLength(2);
    expect(first.body.events[0]).toEqual({ id: expect.any(Number), type: "sign_in", ip: "192.0.2.2", userAgent: "ua", createdAt: expect.any(String) });
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await server.request("GET", `/auth/me/activity?limit=2&before=${first.body.nextCursor}`, { token: tokens.accessToken });
    expect(second.body.events.map((e: { ip: string }) => e.ip)).toEqual(["192.0.2.0"]);
    expect(second.body.nextCursor).toBeNull();
    expect(JSON.stringify([first.body, second.body])).not.toContain("198.51.100.9");
    expect((await server.request("GET", "/auth/me/activity?limit=5000", { token: tokens.accessToken })).status).toBe(400);
    expect((await server.request("GET", "/auth/me/activity")).status).toBe(401);
  });
});
