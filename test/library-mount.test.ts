import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia, t } from "elysia";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 19: mounted in a host app, the server's body rules, guards and headers applied to every route of the host.
let server: TestServer;
let host: { handle(request: Request): Promise<Response> };

const BIG_JSON = JSON.stringify({ items: Array.from({ length: 5000 }, (_, i) => ({ i, label: `item number ${i}` })) });

beforeAll(async () => {
  // teams is off: its routes must answer the server's own 404, not the host's.
  server = await createTestServer({ AUTH_PLUGINS: "password,magic-code", LOG_LEVEL: "silent" });
  host = new Elysia()
    .use(server.app)
    .post("/upload", async ({ body }) => ({ name: body.file.name, size: body.file.size }), {
      body: t.Object({ file: t.File() }),
    })
    .post("/webhook", ({ body }) => ({ received: body }), { parse: "text" })
    .post("/bulk", ({ body }) => ({ count: (body as { items: unknown[] }).items.length }))
    .post("/typed", ({ body }) => body, { body: t.Object({ n: t.Number() }) })
    .get("/hello", () => "hi");
});

afterAll(() => server.close());

const at = (path: string, init?: RequestInit) => host.handle(new Request(`http://localhost${path}`, init));

describe("mounted in a host app", () => {
  test("a multipart upload, a text/plain webhook and a JSON body over 64 KiB reach the host's routes", async () => {
    expect(BIG_JSON.length).toBeGreaterThan(64 * 1024);
    const form = new FormData();
    form.append("file", new File(["x".repeat(1000)], "photo.png", { type: "image/png" }));
    const upload = await at("/upload", { method: "POST", body: form });
    expect(upload.status).toBe(200);
    expect(await upload.json()).toEqual({ name: "photo.png", size: 1000 });

    const webhook = await at("/webhook", { method: "POST", headers: { "content-type": "text/plain" }, body: "event=paid\u0000" });
    expect(webhook.status).toBe(200);
    expect(await webhook.json()).toEqual({ received: "event=paid\u0000" });

    const bulk = await at("/bulk", { method: "POST", headers: { "content-type": "application/json" }, body: BIG_JSON });
    expect(bulk.status).toBe(200);
    expect(await bulk.json()).toEqual({ count: 5000 });
  });

  test("the host's routes get none of the server's headers, CORS answers or error shapes", async () => {
    const hello = await at("/hello?q=%00", { headers: { origin: "http://localhost:3000" } });
    expect(hello.status).toBe(200);
    expect(await hello.text()).toBe("hi");
    for (const name of ["x-request-id", "x-content-type-options", "cache-control", "referrer-policy", "access-control-allow-origin", "vary"]) {
      expect(hello.headers.get(name)).toBeNull();
    }
    // A preflight to a host route is the host's business: no CORS plugin of ours answers it.
    const preflight = await at("/hello", { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "GET" } });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    // The host's validation errors keep Elysia's shape and status, not our 400 VALIDATION_ERROR.
    const typed = await at("/typed", { method: "POST", headers: { "content-type": "application/json" }, body: '{"n":"x"}' });
    expect(typed.status).toBe(422);
    const unknown = await at("/no/such/page");
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("x-request-id")).toBeNull();
  });

  test("the auth routes keep their rules: 415, 413, the NUL guard, headers, CORS and their 404", async () => {
    const form = new FormData();
    form.append("email", uniqueEmail());
    const multipart = await at("/auth/login", { method: "POST", body: form });
    expect(multipart.status).toBe(415);
    expect((await multipart.json()).code).toBe("UNSUPPORTED_MEDIA_TYPE");

    const text = await at("/auth/login", { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" });
    expect(text.status).toBe(415);

    const big = await at("/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: BIG_JSON });
    expect(big.status).toBe(413);
    expect((await big.json()).code).toBe("PAYLOAD_TOO_LARGE");

    const nul = await at("/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "a\u0000@x.io", password: "p" }) });
    expect(nul.status).toBe(400);
    expect((await nul.json()).code).toBe("VALIDATION_ERROR");

    const me = await at("/auth/me", { headers: { origin: "http://localhost:3000" } });
    expect(me.status).toBe(401);
    expect((await me.json()).code).toBe("UNAUTHORIZED");
    expect(me.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(me.headers.get("x-content-type-options")).toBe("nosniff");
    expect(me.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");

    const preflight = await at("/auth/login", { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");

    const register = await at("/auth/register", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: uniqueEmail(), password: "correct horse battery" }).toString(),
    });
    expect(register.status).toBe(201);

    // A route of a disabled plugin answers the server's own 404 NOT_FOUND, also when mounted.
    const teams = await at("/auth/teams");
    expect(teams.status).toBe(404);
    expect(await teams.json()).toEqual({ code: "NOT_FOUND", message: "Not found" });
  });
});
