import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Browser, chromium } from "playwright-core";
import { createTestServer, type TestServer } from "./support/server";

// Issue 19: /docs loaded its UI from a CDN at @latest (blank on a closed network), and /docs/json lacked the Bearer
// marks, listed multipart bodies the server refuses, and left routes without their answers.
type Schema = { type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; format?: string; enum?: unknown[]; const?: unknown; minLength?: number; minimum?: number; anyOf?: Schema[]; oneOf?: Schema[]; items?: Schema; default?: unknown; pattern?: string };
type Operation = {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses?: Record<string, unknown>;
};
type Spec = { paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

let server: TestServer;
let spec: Spec;

beforeAll(async () => {
  server = await createTestServer();
  spec = (await server.request("GET", "/docs/json")).body;
}, 60_000);

afterAll(() => server.close());

const operations = () => Object.entries(spec.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));

/** A value a schema accepts, as far as a simple walk can tell: enough to pass validation on most routes. */
function sample(schema: Schema | undefined): unknown {
  if (!schema) return "x";
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  const choice = schema.anyOf ?? schema.oneOf;
  if (choice) return sample(choice.find((s) => s.type !== "null") ?? choice[0]);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const name of schema.required ?? []) out[name] = sample(schema.properties?.[name]);
      return out;
    }
    case "array":
      return [];
    case "boolean":
      return false;
    case "number":
    case "integer":
      return schema.minimum ?? 1;
    default:
      if (schema.format === "email") return "walker@example.com";
      if (schema.format === "uuid") return crypto.randomUUID();
      if (schema.pattern === "^\\d{6}$") return "123456";
      return "x".repeat(Math.max(schema.minLength ?? 1, 8));
  }
}

describe("/docs/json", () => {
  test("declares the Bearer scheme and marks every route that needs it: each one refused without a token says so", async () => {
    expect(spec.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    const unmarked: string[] = [];
    const markedButOpen: string[] = [];
    for (const { path, method, op } of operations()) {
      const url = path.replace(/\{[^}]+\}/g, crypto.randomUUID());
      const body = op.requestBody ? sample(op.requestBody.content["application/json"]?.schema) : undefined;
      const res = await server.request(method.toUpperCase(), url, { body });
      const required = op.security?.some((s) => "bearer" in s) && !op.security.some((s) => Object.keys(s).length === 0);
      if (res.status === 401 && res.body?.code === "UNAUTHORIZED" && !op.security?.some((s) => "bearer" in s)) unmarked.push(`${method} ${path}`);
      if (required && res.status < 400) markedButOpen.push(`${method} ${path}`);
      // What the server answered is one of the answers the spec lists for the route.
      expect({ route: `${method} ${path}`, status: Object.keys(op.responses ?? {}).includes(String(res.status)) ? "listed" : res.status }).toEqual({
        route: `${method} ${path}`,
        status: "listed",
      });
    }
    expect(unmarked).toEqual([]);
    expect(markedButOpen).toEqual([]);
    // The core's routes that take a token, for one.
    for (const [path, method] of [["/auth/me", "get"], ["/auth/sessions", "get"], ["/auth/logout", "post"], ["/auth/me/activity", "get"]] as const) {
      expect(spec.paths[path]?.[method]?.security).toEqual([{ bearer: [] }, { cookie: [] }]);
    }
  }, 60_000);

  test("lists no multipart body: every body is JSON or form-encoded", () => {
    for (const { path, method, op } of operations()) {
      if (!op.requestBody) continue;
      expect({ route: `${method} ${path}`, types: Object.keys(op.requestBody.content).sort() }).toEqual({
        route: `${method} ${path}`,
        types: ["application/json", "application/x-www-form-urlencoded"],
      });
    }
  });

  test("every route has its success answer and its error answers; the 204s are 204", () => {
    for (const { path, method, op } of operations()) {
      const statuses = Object.keys(op.responses ?? {});
      // The public keys are served from memory, and liveness asks no backend: those routes have no error to answer.
      const canFail = path !== "/.well-known/jwks.json" && path !== "/health/live";
      expect({ route: `${method} ${path}`, success: statuses.some((s) => /^[23]/.test(s)), errors: statuses.some((s) => /^[45]/.test(s)) }).toEqual({
        route: `${method} ${path}`,
        success: true,
        errors: canFail,
      });
      if (op.requestBody) expect(statuses).toEqual(expect.arrayContaining(["400", "413", "415"]));
      if (op.security?.length) expect(statuses).toContain("401");
    }
    const noContent = [
      ["/auth/me", "delete"],
      ["/auth/logout", "post"],
      ["/auth/sessions", "delete"],
      ["/auth/sessions/{id}", "delete"],
      ["/auth/password/change", "post"],
      ["/auth/password/reset", "post"],
      ["/auth/mfa/disable", "post"],
      ["/auth/passkeys/{id}", "delete"],
      ["/auth/accounts/{provider}", "delete"],
      ["/auth/teams/{id}", "delete"],
      ["/auth/teams/{id}/members/{userId}", "delete"],
      ["/auth/invitations/{id}", "delete"],
    ] as const;
    for (const [path, method] of noContent) expect({ path, method, has204: "204" in (spec.paths[path]?.[method]?.responses ?? {}) }).toEqual({ path, method, has204: true });
  });

  test("GET /auth/me/activity is documented: its query and its page of events", () => {
    const op = spec.paths["/auth/me/activity"]?.get as Operation & { responses: Record<string, { content: Record<string, { schema: Schema }> }> };
    expect(op.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual(["query:before", "query:limit"]);
    const page = op.responses["200"]?.content["application/json"]?.schema as Schema;
    expect(Object.keys(page.properties ?? {}).sort()).toEqual(["events", "nextCursor"]);
    expect(Object.keys(page.properties?.events?.items?.properties ?? {}).sort()).toEqual(["createdAt", "id", "ip", "type", "userAgent"]);
  });
});

describe("/docs", () => {
  let browser: Browser;
  afterAll(async () => {
    await browser?.close();
    await server.app.server?.stop(true);
  });

  test("the page's script is ours and pinned, served by the server", async () => {
    const page = await server.request("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.text).not.toMatch(/https?:\/\/[^"'\s]*\.js/);
    const src = /<script src="([^"]+)"/.exec(page.text)?.[1];
    expect(src).toBe("/docs/assets/api-reference.js");
    const script = await server.request("GET", src as string);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toStartWith("text/javascript");
    expect(script.text.length).toBeGreaterThan(1_000_000);
  });

  test("Chromium renders the reference with no request leaving the server", async () => {
    server.app.listen({ port: 0, hostname: "127.0.0.1" });
    const origin = `http://127.0.0.1:${server.app.server?.port}`;
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu"] });
    const page = await browser.newPage();
    const requested: string[] = [];
    page.on("request", (request) => {
      requested.push(request.url());
    });
    await page.goto(`${origin}/docs`);
    // The title comes from the spec, so it shows only once the UI has loaded the spec and rendered it.
    await page.getByRole("heading", { name: "Auth server" }).first().waitFor({ timeout: 30_000 });
    // Whatever the UI fetches after its first render (fonts, icons, workers) is asked for within this.
    await Bun.sleep(2000);
    const outside = requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith("data:") && !url.startsWith("blob:"));
    expect(outside).toEqual([]);
    expect(requested).toContain(`${origin}/docs/json`);
  }, 90_000);
});
