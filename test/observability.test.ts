import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { users } from "../src/db/schema";
import { describeError } from "../src/errors";
import type { Logger } from "../src/logger";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

type LogLine = { level: string; msg: string } & Record<string, unknown>;

/** A logger port that keeps every line, as the JSON the real logger would print. */
function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const keep = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push(JSON.parse(JSON.stringify({ level, msg, ...fields })) as LogLine);
  };
  return { lines, debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
}

const PASSWORD = "correct horse battery staple";

/** afterResponse runs after the answer is out: wait a tick for the line. */
async function requestLine(logger: { lines: LogLine[] }, requestId: string): Promise<LogLine> {
  for (let i = 0; i < 50; i++) {
    const line = logger.lines.find((l) => l.msg === "request" && l.requestId === requestId);
    if (line) return line;
    await Bun.sleep(2);
  }
  throw new Error(`no log line for request ${requestId}`);
}

describe("request logs and metrics", () => {
  let server: TestServer;
  const logger = captureLogger();

  beforeAll(async () => {
    server = await createTestServer({ METRICS: "true", RATE_LIMIT_LOGIN_EMAIL: "2/60" }, { logger });
  }, 30_000);
  afterAll(async () => {
    await server.close();
  });

  test("one JSON line per request with method, route pattern, status, duration, request id and user id; no secrets", async () => {
    const email = uniqueEmail("obs");
    const registered = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: { "x-request-id": "reg-1" } });
    expect(registered.status).toBe(201);
    const { accessToken, refreshToken, user } = registered.body;

    const me = await server.request("GET", "/auth/me", { token: accessToken, headers: { "x-request-id": "me-1" } });
    expect(me.status).toBe(200);
    const line = await requestLine(logger, "me-1");
    expect(line).toMatchObject({ level: "info", method: "GET", route: "/auth/me", status: 200, requestId: "me-1", userId: user.id });
    expect(typeof line.durationMs).toBe("number");

    // A sign-in answers with the user: that id is logged too.
    expect(await requestLine(logger, "reg-1")).toMatchObject({ route: "/auth/register", status: 201, userId: user.id });

    const session = await server.request("DELETE", `/auth/sessions/${crypto.randomUUID()}`, { token: accessToken, headers: { "x-request-id": "del-1" } });
    expect(session.status).toBe(404);
    // The pattern, not the path: ids in paths stay out of logs.
    expect(await requestLine(logger, "del-1")).toMatchObject({ route: "/auth/sessions/:id", status: 404 });

    const everything = JSON.stringify(logger.lines);
    for (const secret of [PASSWORD, accessToken, refreshToken, email]) expect(everything).not.toContain(secret);
  });

  test("x-request-id: a sane one is echoed, anything else is replaced by a fresh id, on errors too", async () => {
    const sane = await server.request("GET", "/health", { headers: { "x-request-id": "Abc.DEF_123-x" } });
    expect(sane.headers.get("x-request-id")).toBe("Abc.DEF_123-x");

    for (const bad of ["has space", "a".repeat(129), "semi;colon", "quote\"d"]) {
      const res = await server.request("GET", "/auth/me", { headers: { "x-request-id": bad } });
      expect(res.status).toBe(401);
      const id = res.headers.get("x-request-id");
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await requestLine(logger, id as string)).toMatchObject({ route: "/auth/me", status: 401 });
    }

    const made = await server.request("GET", "/no/such/route");
    expect(made.status).toBe(404);
    const id = made.headers.get("x-request-id") as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await requestLine(logger, id)).toMatchObject({ route: "unmatched", status: 404 });
  });

  test("GET /metrics: requests by route and status, durations, sign-ins by method and outcome, rate-limit hits", async () => {
    const email = uniqueEmail("metrics");
    expect((await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(201);
    expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(200);
    expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(200);
    const limited = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(limited.status).toBe(429);
    expect((await server.request("POST", "/auth/code/verify", { body: { email, code: "000000" }, headers: { "x-request-id": "last-before-metrics" } })).status).toBe(400);
    // Metrics are counted after each answer is sent; the last line being written means all of them are.
    await requestLine(logger, "last-before-metrics");

    const res = await server.request("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const metrics = res.text;
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"./+]/g, "\\$&")} (\\S+)$`, "m").exec(metrics)?.[1]);

    expect(metrics).toContain("# TYPE auth_http_requests_total counter");
    expect(value('auth_http_requests_total{method="POST",route="/auth/login",status="200"}')).toBeGreaterThanOrEqual(2);
    expect(value('auth_http_requests_total{method="POST",route="/auth/login",status="429"}')).toBeGreaterThanOrEqual(1);
    expect(metrics).toContain("# TYPE auth_http_request_duration_seconds histogram");
    const count = value('auth_http_request_duration_seconds_count{method="POST",route="/auth/login"}');
    expect(count).toBeGreaterThanOrEqual(3);
    expect(value('auth_http_request_duration_seconds_bucket{method="POST",route="/auth/login",le="+Inf"}')).toBe(count);
    expect(value('auth_sign_ins_total{method="password",outcome="success"}')).toBeGreaterThanOrEqual(2);
    expect(value('auth_sign_ins_total{method="magic-code",outcome="failure"}')).toBeGreaterThanOrEqual(1);
    expect(value('auth_rate_limited_total{route="/auth/login"}')).toBeGreaterThanOrEqual(1);
    // Label values are route patterns and bounded names only; no email or token ever becomes a series.
    expect(metrics).not.toContain(email);
  });

  test("a failed query is described by the database's message and the SQL, never its parameters", async () => {
    const email = uniqueEmail("taken");
    await server.ctx.users.create({ email });
    const failed = await server.ctx.db
      .insert(users)
      .values({ id: crypto.randomUUID(), email })
      .catch((error: unknown) => error);
    const line = describeError(failed);
    expect(line).toContain('insert into "users"');
    expect(line).toMatch(/duplicate key|unique/i);
    expect(line).not.toContain(email);
  });

  test("/metrics is not served unless METRICS=true", async () => {
    const plain = await createTestServer();
    try {
      const res = await plain.request("GET", "/metrics");
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("NOT_FOUND");
    } finally {
      await plain.close();
    }
  });
});
