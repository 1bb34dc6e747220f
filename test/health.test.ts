import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer } from "./support/server";

// Issue 18: GET /health/live and GET /health/ready (API.md, core table), in the OpenAPI spec.
let server: TestServer;
beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

describe("health", () => {
  test("/health/live answers 200 while the process runs; /health/ready answers as /health", async () => {
    const live = await server.request("GET", "/health/live");
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: "ok" });
    const ready = await server.request("GET", "/health/ready");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: "ok", db: "ok", kv: "ok" });
    expect((await server.request("GET", "/health")).body).toEqual(ready.body);
  });

  test("while draining, readiness is 503 and liveness still 200", async () => {
    server.lifecycle.draining = true;
    try {
      const ready = await server.request("GET", "/health/ready");
      expect(ready.status).toBe(503);
      expect(ready.body.status).toBe("draining");
      expect((await server.request("GET", "/health/live")).status).toBe(200);
    } finally {
      server.lifecycle.draining = false;
    }
    expect((await server.request("GET", "/health/ready")).status).toBe(200);
  });

  test("both are in the OpenAPI spec", async () => {
    const spec = await server.request("GET", "/docs/json");
    expect(spec.status).toBe(200);
    for (const path of ["/health", "/health/live", "/health/ready"]) expect(spec.body.paths[path]?.get).toBeDefined();
  });
});
