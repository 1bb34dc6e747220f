import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeProtectedHeader } from "jose";
import { KEY_PUBLISH_DELAY_S, rotateSigningKeys } from "../src/tokens/rotation";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 18: JWT signing keys rotate without downtime; the old key stays in the JWKS until its tokens expire.

const PASSWORD = "correct horse battery staple";
let offsetMs = 0;
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ ACCESS_TOKEN_TTL_S: 900 }, { clock: { now: () => new Date(Date.now() + offsetMs) } });
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

describe("signing key rotation", () => {
  test("a new key is published at once, signs after the publication delay; the old one verifies until its tokens expire", async () => {
    const email = uniqueEmail("rotate");
    expect((await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } })).status).toBe(201);
    const before = await signIn(email);
    const oldKid = kidOf(before);

    const rotated = await rotateSigningKeys(server.ctx.db, { now: server.ctx.clock.now() });
    // On a shared database other keys may be in their own rotation; the one that signed `before` is among those retiring.
    expect(rotated?.kid).toBeString();
    // Every instance reloads its keys every KEY_RELOAD_MS (a minute): one minute on, this one publishes both.
    offsetMs = 61_000;
    await signIn(email);
    await Bun.sleep(50);
    const jwks = (await server.request("GET", "/.well-known/jwks.json")).body.keys.map((k: { kid: string }) => k.kid);
    expect(jwks).toContain(oldKid);
    expect(jwks).toContain(rotated?.kid);
    // Within the delay the old key still signs, so instances that have not reloaded yet verify everything.
    expect(kidOf(await signIn(email))).not.toBe(rotated?.kid);

    offsetMs = (KEY_PUBLISH_DELAY_S + 1) * 1000;
    const after = await signIn(email);
    expect(kidOf(after)).toBe(rotated?.kid);
    // Tokens of both keys work, and the old key stays published while its tokens may live.
    expect((await server.request("GET", "/auth/me", { token: after })).status).toBe(200);
    expect((await server.request("GET", "/auth/me", { token: before })).status).toBe(200);
    const published = (await server.request("GET", "/.well-known/jwks.json")).body.keys.map((k: { kid: string }) => k.kid);
    expect(published).toContain(oldKid);
    expect(published).toContain(rotated?.kid);
  });

  test("the schedule rotates only a key older than it asks", async () => {
    const now = server.ctx.clock.now();
    expect(await rotateSigningKeys(server.ctx.db, { now, olderThanMs: 86_400_000 })).toBeNull();
    expect(await rotateSigningKeys(server.ctx.db, { now, olderThanMs: 0 })).not.toBeNull();
  });
});
