import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import { createTestServer, type TestServer } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Random and hostile bodies, headers and content types against every route of the OpenAPI spec:
 * never a 5xx, always the error shape on errors, never a stack trace, and /health still answers.
 */
let server: TestServer;
let routes: Array<{ method: string; path: string }>;
let token: string;

beforeAll(async () => {
  server = await createTestServer({ RATE_LIMIT_ANONYMOUS_IP: "100000/60" });
  const spec = await server.request("GET", "/docs/json");
  routes = [];
  for (const [path, ops] of Object.entries(spec.body.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) {
      if (["get", "post", "patch", "delete", "put"].includes(method)) routes.push({ method: method.toUpperCase(), path });
    }
  }
  token = (await createSignedInUser(server)).tokens.accessToken;
});
afterAll(async () => {
  await server.close();
});

const hostileString = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom(
    "",
    " ",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "a@b.com,c@d.com",
    "\"quoted\"@example.com",
    "ada\r\nBcc: x@evil.example@example.com",
    "ada＠example.com",
    "../../etc/passwd",
    "%00",
    "\u0000",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "9".repeat(400),
    "null",
    "true",
    "__proto__",
  ),
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 3 }),
  ),
})).value;
const fieldNames = fc.constantFrom(
  "email",
  "password",
  "code",
  "token",
  "refreshToken",
  "mfaToken",
  "name",
  "teamId",
  "role",
  "newPassword",
  "currentPassword",
  "username",
  "idToken",
  "response",
  "challengeId",
  "__proto__",
  "constructor",
  "roles",
  "emailVerified",
);
const body = fc.oneof(
  fc.dictionary(fieldNames, hostileValue, { maxKeys: 5 }).map((o) => ({ kind: "json" as const, text: JSON.stringify(o) })),
  fc.string({ maxLength: 80 }).map((s) => ({ kind: "json" as const, text: s })),
  fc.dictionary(fieldNames, hostileString, { maxKeys: 4 }).map((o) => ({ kind: "form" as const, text: new URLSearchParams(o as Record<string, string>).toString() })),
  fc.constantFrom("text/plain", "application/xml", "multipart/form-data", "application/json; charset=utf-7", "").map((t) => ({ kind: "raw" as const, text: "x=1", type: t })),
);
const segment = fc.oneof(fc.uuid(), hostileString.map((s) => encodeURIComponent(s) || "x"), fc.constantFrom("google", "oidc", "nope"));

test("every route survives hostile input", async () => {
  expect(routes.length).toBeGreaterThan(5);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: routes.length - 1 }),
      body,
      segment,
      fc.boolean(),
      fc.option(hostileString),
      async (index, b, seg, withToken, query) => {
        const route = routes[index]!;
        const path = route.path.replace(/\{[^}]+\}/g, seg) + (query ? `?redirectTo=${encodeURIComponent(query)}&teamId=${encodeURIComponent(query)}` : "");
        const headers: Record<string, string> = {};
        if (withToken) headers.authorization = `Bearer ${token}`;
        let text: string | undefined;
        if (route.method !== "GET" && route.method !== "DELETE") {
          text = b.text;
          headers["content-type"] = b.kind === "json" ? "application/json" : b.kind === "form" ? "application/x-www-form-urlencoded" : b.type;
        }
        const res = await server.app.handle(new Request(`http://localhost${path}`, { method: route.method, headers, body: text }));
        const raw = await res.text();
        if (res.status >= 500) throw new Error(`${route.method} ${path} answered ${res.status}: ${raw}`);
        expect(raw).not.toMatch(/\n\s+at .+:\d+:\d+|node_modules|SELECT |INSERT INTO/);
        if (res.status >= 400 && raw) {
          const parsed = JSON.parse(raw);
          expect(typeof parsed.code).toBe("string");
          expect(typeof parsed.message).toBe("string");
        }
      },
    ),
    { numRuns: 400 },
  );
  const health = await server.request("GET", "/health");
  expect(health.status).toBe(200);
}, 120_000);
