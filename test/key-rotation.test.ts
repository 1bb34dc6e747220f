import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeProtectedHeader } from "jose";
import { KEY_PUBLISH_DELAY_S, rotateSigningKeys } from "../src/tokens/rotation";
import { createTestServer, isolatedDatabase, type TestServer, uniqueEmail } from "./support/server";

// Issue 18: JWT signing keys rotate without downtime; a new key is published before it signs, and the old key stays
// in the JWKS until its tokens expire. Each server here has a database of its own: rotations touch every key in it.

const PASSWORD = "correct horse battery staple";
const TTL_S = 900;
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ ACCESS_TOKEN_TTL_S: TTL_S, IMPERSONATION_TTL_S: TTL_S }, { clock, database: await isolatedDatabase() });
});
afterAll(async () => {
  await server.close();
});

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

async function signIn(email: string) {
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(200);
  return res.body.accessToken as string;
}

const published = async () => (await server.request("GET", "/.well-known/jwks.json")).body.keys.map((k: { kid: string }) => k.kid) as string[];

describe("signing key rotation", () => {
  test("a new key is published at once, signs after the publication delay; the old one verifies until its tokens expire", async () => {
    const email = uniqueEmail("rotate");
    expect((await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(201);
    const before = await signIn(email);
    const oldKid = kidOf(before);

    const rotated = await rotateSigningKeys(server.ctx.db, { now: clock.now() });
    expect(rotated?.retired).toEqual([oldKid as string]);
    // Every instance reloads its keys every KEY_RELOAD_MS (a minute): one minute on, this one publishes both.
    offsetMs = 61_000;
    await signIn(email);
    await Bun.sleep(50);
    expect(await published()).toEqual([oldKid as string, rotated?.kid as string]);
    // Within the delay the old key still signs, so instances that have not reloaded yet verify everything.
    expect(kidOf(await signIn(email))).toBe(oldKid);

    offsetMs = (KEY_PUBLISH_DELAY_S + 1) * 1000;
    const after = await signIn(email);
    expect(kidOf(after)).toBe(rotated?.kid);
    // Tokens of both keys work, and the old key stays published while its tokens may live.
    expect((await server.request("GET", "/auth/me", { token: after })).status).toBe(200);
    expect((await server.request("GET", "/auth/me", { token: before })).status).toBe(200);
    expect(await published()).toEqual([oldKid as string, rotated?.kid as string]);

    // Once every token the old key signed has expired, it leaves the JWKS (at the next reload).
    offsetMs = (KEY_PUBLISH_DELAY_S + TTL_S + 61 + 61) * 1000;
    await signIn(email);
    await Bun.sleep(50);
    expect(await published()).toEqual([rotated?.kid as string]);
  });

  test("the schedule (JWT_KEY_ROTATION_DAYS) rotates only a key older than it asks, once when every instance runs it", async () => {
    const scheduled = await createTestServer({ JWT_KEY_ROTATION_DAYS: 30 }, { clock, database: await isolatedDatabase() });
    try {
      const runAll = () => Promise.all(scheduled.ctx.hooks.maintenance.map((task) => task()));
      const kids = async () => (await scheduled.request("GET", "/.well-known/jwks.json")).body.keys.length as number;
      await runAll();
      expect(await kids()).toBe(1);
      // 31 days on, three instances' jobs at once: one rotation.
      offsetMs += 31 * 86_400_000;
      await Promise.all([runAll(), runAll(), runAll()]);
      expect(await rotateSigningKeys(scheduled.ctx.db, { now: clock.now(), olderThanMs: 86_400_000 })).toBeNull();
      await scheduled.request("GET", "/.well-known/jwks.json");
      offsetMs += 61_000;
      await scheduled.request("POST", "/auth/anonymous");
      await Bun.sleep(50);
      expect(await kids()).toBe(2);
    } finally {
      await scheduled.close();
    }
  });
});
