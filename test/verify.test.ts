import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPair, SignJWT } from "jose";
import { prefixed } from "../src/kv";
import { RedisStore } from "../src/kv/redis";
import { createTokenVerifier, TokenRejectedError, type TokenVerifier } from "../src/verify";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 19: a resource server checks our access tokens locally, and refuses a revoked session at once.
// Revocations are read from Redis, so this test uses the real one on both passes (.ci/run starts it).
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const kvPrefix = `test:${crypto.randomUUID()}:`;

let server: TestServer;
let base: string;
let jwksProxy: ReturnType<typeof Bun.serve>;
let jwksFetches = 0;
let verifier: TokenVerifier;

beforeAll(async () => {
  const kv = prefixed(new RedisStore(REDIS_URL, 3000), kvPrefix);
  // Connected before the first request, as the server waits for its own REDIS_URL at start (this store is handed in).
  for (let tries = 0; !(await kv.ping().then(() => true, () => false)); tries++) {
    if (tries > 100) throw new Error("Redis did not answer");
    await Bun.sleep(20);
  }
  server = await createTestServer({}, { kv });
  server.app.listen({ port: 0, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${server.app.server?.port}`;
  // Stands between the verifier and the server to count how often the keys are fetched.
  jwksProxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (request) => {
      jwksFetches++;
      return fetch(`${base}${new URL(request.url).pathname}`);
    },
  });
  verifier = createTokenVerifier({
    serverUrl: `http://127.0.0.1:${jwksProxy.port}`,
    issuer: server.ctx.config.issuer,
    audience: server.ctx.config.audience,
    redisUrl: REDIS_URL,
    kvPrefix,
    jwksCooldownMs: 0,
  });
}, 60_000);

afterAll(async () => {
  await verifier.close();
  jwksProxy.stop(true);
  await server.app.server?.stop(true);
  await server.close();
});

async function signUp(): Promise<{ accessToken: string; user: { id: string } }> {
  const res = await fetch(`${base}/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: uniqueEmail(), password: "correct horse battery staple" }),
  });
  expect(res.status).toBe(201);
  return res.json();
}

async function rejection(promise: Promise<unknown>): Promise<TokenRejectedError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TokenRejectedError) return error;
    throw error;
  }
  throw new Error("the token was accepted");
}

describe("bun-auth-server/verify against a running server", () => {
  test("sign in, verify ok, logout, refused at once", async () => {
    const { accessToken, user } = await signUp();
    const verified = await verifier.verify(accessToken);
    expect(verified.userId).toBe(user.id);
    expect(verified.roles).toEqual(["user"]);
    expect(verified.amr).toEqual(["pwd"]);
    expect((await verifier.verify(`Bearer ${accessToken}`)).sessionId).toBe(verified.sessionId);

    const logout = await fetch(`${base}/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${accessToken}` } });
    expect(logout.status).toBe(204);
    const refused = await rejection(verifier.verify(accessToken));
    expect([refused.status, refused.code]).toEqual([401, "SESSION_REVOKED"]);
  });

  test("the JWKS is fetched once, cached, and fetched again for an unknown kid; foreign and tampered tokens are refused", async () => {
    const before = jwksFetches;
    const { accessToken } = await signUp();
    await verifier.verify(accessToken);
    await verifier.verify(accessToken);
    expect(jwksFetches - before).toBeLessThanOrEqual(1);
    const cached = jwksFetches;

    // A token under a key the server never published: the verifier asks for the keys again (a rotation?), then refuses.
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const forged = await new SignJWT({ sid: crypto.randomUUID(), roles: ["admin"], amr: ["pwd"] })
      .setProtectedHeader({ alg: "EdDSA", kid: "not-a-key-of-ours", typ: "at+jwt" })
      .setSubject(crypto.randomUUID())
      .setIssuer(server.ctx.config.issuer)
      .setAudience(server.ctx.config.audience)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await rejection(verifier.verify(forged))).code).toBe("INVALID_TOKEN");
    expect(jwksFetches).toBe(cached + 1);

    const [header, payload, signature] = accessToken.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, roles: ["admin"] })).toString("base64url")}.${signature}`;
    expect((await rejection(verifier.verify(tampered))).code).toBe("INVALID_TOKEN");
  });

  test("a token for another audience is refused", async () => {
    const { accessToken } = await signUp();
    const elsewhere = createTokenVerifier({ serverUrl: base, issuer: server.ctx.config.issuer, audience: "https://other.example" });
    try {
      expect((await rejection(elsewhere.verify(accessToken))).code).toBe("INVALID_TOKEN");
    } finally {
      await elsewhere.close();
    }
  });
});
