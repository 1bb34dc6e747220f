import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: account enumeration. Known and unknown emails get the same status, body and headers (only the
 * per-request x-request-id and date differ), and take the same time.
 */
const PASSWORD = "plum-kettle-orbit-93";
let server: TestServer;
let known: string;

beforeAll(async () => {
  server = await createTestServer({ REQUIRE_EMAIL_VERIFICATION: true });
  known = uniqueEmail("known");
  await server.ctx.users.create({ email: known, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
});
afterAll(async () => {
  await server.close();
});

const VARYING = new Set(["x-request-id", "date"]);
function shape(res: TestResponse) {
  const headers: string[] = [];
  res.headers.forEach((value, key) => {
    if (!VARYING.has(key)) headers.push(`${key}: ${value}`);
  });
  headers.sort();
  return { status: res.status, text: res.text, headers };
}

type Probe = { name: string; call: (email: string) => Promise<TestResponse> };
const probes: Probe[] = [
  { name: "login (wrong password)", call: (email) => server.request("POST", "/auth/login", { body: { email, password: "wrong-guess-4-abcd" } }) },
  { name: "register", call: (email) => server.request("POST", "/auth/register", { body: { email, password: PASSWORD } }) },
  { name: "forgot-password", call: (email) => server.request("POST", "/auth/password/forgot", { body: { email } }) },
  { name: "magic code request", call: (email) => server.request("POST", "/auth/code/request", { body: { email } }) },
  { name: "verification code resend", call: (email) => server.request("POST", "/auth/email/verify/resend", { body: { email } }) },
];

describe("same answer for known and unknown emails", () => {
  for (const probe of probes) {
    test(`${probe.name}: same status, body and headers for a known and an unknown email`, async () => {
      const a = shape(await probe.call(known));
      const b = shape(await probe.call(uniqueEmail("unknown")));
      expect(a).toEqual(b);
      expect(a.status).toBeLessThan(500);
    });
  }

  test("register with REQUIRE_EMAIL_VERIFICATION: a known email answers 202 and its owner is mailed a notice instead", async () => {
    const res = await server.request("POST", "/auth/register", { body: { email: known, password: "another-pass-word-88" } });
    expect(res.status).toBe(202);
    expect(res.body.code).toBe("PENDING_CONFIRMATION");
    await Bun.sleep(0);
    expect(server.mailer.last(known)?.subject).toBeDefined();
    // The owner's password is untouched: the attempt did not change the account.
    expect((await server.request("POST", "/auth/login", { body: { email: known, password: PASSWORD } })).status).toBe(200);
  });

  test("register with REQUIRE_EMAIL_VERIFICATION off answers 409 EMAIL_TAKEN, as the contract mandates (documented in SECURITY.md)", async () => {
    const open = await createTestServer();
    try {
      const email = uniqueEmail("taken");
      expect((await open.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(201);
      const again = await open.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe("EMAIL_TAKEN");
    } finally {
      await open.close();
    }
  });
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** Alternates known and unknown samples so drift (GC, other processes) falls on both alike. */
async function timings(call: (email: string) => Promise<TestResponse>, knownEmail: () => string, samples = 100) {
  const k: number[] = [];
  const u: number[] = [];
  for (let i = 0; i < samples; i++) {
    for (const [email, into] of i % 2 ? ([[knownEmail(), k], [uniqueEmail("u"), u]] as const) : ([[uniqueEmail("u"), u], [knownEmail(), k]] as const)) {
      const t = performance.now();
      await call(email);
      into.push(performance.now() - t);
    }
  }
  return { known: median(k), unknown: median(u) };
}

describe("timing", () => {
  for (const probe of probes) {
    test(`${probe.name}: medians over 100 samples for known and unknown emails differ by under 10 ms`, async () => {
      const { known: k, unknown: u } = await timings(probe.call, () => known);
      expect(Math.abs(k - u)).toBeLessThan(10);
    }, 60_000);
  }
});
