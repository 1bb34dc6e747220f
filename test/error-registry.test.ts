import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { Elysia } from "elysia";
import { CORE_ERRORS } from "../src/errors";
import { errorRegistryOf } from "../src/plugin";
import { ERROR_REGISTRY, PLUGINS } from "../src/plugins";
import { createTestServer, type TestServer } from "./support/server";
import { createSignedInUser } from "./support/users";

// Issue 16: one error registry; a code has exactly one status, and the spec lists each route's codes.

type Spec = { paths: Record<string, Record<string, { responses?: Record<string, { content?: { "application/json"?: { schema?: { properties?: { code?: { enum?: string[] } } } } } }> }>> };

const sourceFiles = async () => {
  const files: Array<{ path: string; text: string }> = [];
  for (const dir of ["src", "plugins"]) {
    for await (const path of new Glob(`${dir}/**/*.ts`).scan(".")) files.push({ path, text: await Bun.file(path).text() });
  }
  return files;
};

/** The enum the spec lists for this route's status, or undefined. */
const specCodes = (spec: Spec, path: string, method: string, status: number) =>
  spec.paths[path]?.[method]?.responses?.[String(status)]?.content?.["application/json"]?.schema?.properties?.code?.enum;

let server: TestServer;
let spec: Spec;

beforeAll(async () => {
  server = await createTestServer({});
  spec = (await server.request<Spec>("GET", "/docs/json")).body;
});
afterAll(() => server.close());

describe("the error registry", () => {
  test("holds the core's codes and every plugin's, each once with one status", () => {
    for (const plugin of PLUGINS) {
      for (const [code, { status }] of Object.entries(plugin.errors ?? {})) expect(ERROR_REGISTRY.get(code)).toMatchObject({ status, owner: plugin.id });
    }
    for (const [code, { status }] of Object.entries(CORE_ERRORS)) expect(ERROR_REGISTRY.get(code)).toMatchObject({ status, owner: "core" });
  });

  test("a code declared twice is refused when the server is composed", () => {
    const copy = { id: "copy", errors: { INVALID_TOKEN: { status: 400, message: "Another meaning" } }, routes: () => new Elysia() };
    expect(() => errorRegistryOf(CORE_ERRORS, [...PLUGINS, copy])).toThrow("error code INVALID_TOKEN is declared by core and again by copy");
  });

  test("no error is made outside the registry: AuthError is constructed only by src/errors.ts", async () => {
    const outside = (await sourceFiles()).filter((f) => f.path !== "src/errors.ts" && f.text.includes("new AuthError(")).map((f) => f.path);
    expect(outside).toEqual([]);
  });

  test("every code the source names (made, compared or sent as ?error=) is registered", async () => {
    const named = new Set<string>();
    for (const { text } of await sourceFiles()) {
      for (const m of text.matchAll(/\b\w*[Ee]rror\("([A-Z][A-Z0-9_]+)"/g)) named.add(m[1] as string);
      for (const m of text.matchAll(/\.code === "([A-Z][A-Z0-9_]+)"/g)) named.add(m[1] as string);
    }
    expect(named.size).toBeGreaterThan(30);
    expect([...named].filter((code) => !ERROR_REGISTRY.has(code))).toEqual([]);
  });
});

describe("the OpenAPI spec", () => {
  test("lists every registered code under its status, and no code the registry lacks or gives another status", () => {
    const listed = new Map<string, Set<number>>();
    for (const operations of Object.values(spec.paths)) {
      for (const operation of Object.values(operations)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          for (const code of response.content?.["application/json"]?.schema?.properties?.code?.enum ?? []) {
            listed.set(code, (listed.get(code) ?? new Set()).add(Number(status)));
          }
        }
      }
    }
    for (const [code, statuses] of listed) expect({ code, statuses: [...statuses] }).toEqual({ code, statuses: [ERROR_REGISTRY.get(code)?.status as number] });
    // A code no route declares its status for would be missing; these are answered by the one error handler only.
    const handlerOnly = new Set(["INTERNAL_ERROR", "BAD_REQUEST", "UNAVAILABLE", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]);
    // ACCESS_DENIED reaches the client only as the OAuth callback's `?error=`, which that route's description lists.
    const redirectOnly = ["ACCESS_DENIED"];
    const callback = JSON.stringify(spec.paths["/auth/oauth/{provider}/callback"]);
    for (const code of redirectOnly) expect(callback).toContain(code);
    expect([...ERROR_REGISTRY.keys()].filter((code) => !listed.has(code) && !handlerOnly.has(code) && !redirectOnly.includes(code))).toEqual([]);
  });

  test("each error a route answers is registered with that status and listed for that route and status", async () => {
    const { tokens } = await createSignedInUser(server);
    const answered: Array<[path: string, method: string, Promise<{ status: number; body: { code: string } }>]> = [
      ["/auth/me", "get", server.request("GET", "/auth/me")],
      ["/auth/me", "get", server.request("GET", "/auth/me", { token: "not-a-jwt" })],
      ["/auth/login", "post", server.request("POST", "/auth/login", { body: { email: "nobody@example.com", password: "wrong password here" } })],
      ["/auth/login", "post", server.request("POST", "/auth/login", { body: {} })],
      ["/auth/refresh", "post", server.request("POST", "/auth/refresh", { body: { refreshToken: "x".repeat(43) } })],
      ["/auth/password/reset", "post", server.request("POST", "/auth/password/reset", { body: { token: "x".repeat(43), newPassword: "a long enough passphrase" } })],
      ["/auth/invitations/accept", "post", server.request("POST", "/auth/invitations/accept", { body: { token: "x".repeat(43), password: "a long enough passphrase" } })],
      ["/auth/code/verify", "post", server.request("POST", "/auth/code/verify", { body: { email: "nobody@example.com", code: "000000" } })],
      ["/auth/mfa/verify", "post", server.request("POST", "/auth/mfa/verify", { body: { mfaToken: "x".repeat(43), code: "000000" } })],
      ["/auth/teams/switch", "post", server.request("POST", "/auth/teams/switch", { token: tokens.accessToken, body: { teamId: crypto.randomUUID() } })],
      ["/auth/oauth/{provider}", "get", server.request("GET", "/auth/oauth/nope")],
      ["/auth/admin/users", "get", server.request("GET", "/auth/admin/users", { token: tokens.accessToken })],
    ];
    for (const [path, method, pending] of answered) {
      const res = await pending;
      expect(res.status).toBeGreaterThanOrEqual(400);
      const registered = ERROR_REGISTRY.get(res.body.code);
      expect({ path, code: res.body.code, status: registered?.status }).toEqual({ path, code: res.body.code, status: res.status });
      expect({ path, code: res.body.code, listed: specCodes(spec, path, method, res.status)?.includes(res.body.code) }).toEqual({ path, code: res.body.code, listed: true });
    }
  });
});
