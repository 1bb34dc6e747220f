import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { base64url, type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import type { SigningKey } from "../../src/tokens/keys";
import { loadKeyRing, signingKeyAt } from "../../src/tokens/rotation";
import { createTestServer, type TestServer } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: access tokens. `alg` is pinned; `typ` tells access tokens from anything else; `exp`, `nbf`, `iss`, `aud`
 * are checked. Forgeries use a fresh key of ours; claim tests sign with the server's own key (or HS256 secret), so
 * only the claim under test is wrong.
 */
const HS_SECRET = "an-hs256-secret-of-at-least-32-characters!";
let ed: TestServer;
let hs: TestServer;
let serverKey: SigningKey;
/** The server's own private key, for jose to sign the claim tests with. */
let serverPrivateKey: CryptoKey;
let fresh: { privateKey: CryptoKey; publicKey: CryptoKey };
let claims: JWTPayload & { sub: string };
let hsClaims: JWTPayload & { sub: string };

beforeAll(async () => {
  [ed, hs] = await Promise.all([createTestServer(), createTestServer({ JWT_ALG: "HS256", JWT_SECRET: HS_SECRET })]);
  serverKey = signingKeyAt(await loadKeyRing(ed.ctx.db, ed.ctx.config, new Date()), new Date()) as SigningKey;
  serverPrivateKey = (await importJWK(serverKey.signingKey.export({ format: "jwk" }) as JWK, "EdDSA")) as CryptoKey;
  fresh = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const payloadOf = async (server: TestServer) => {
    const { tokens } = await createSignedInUser(server);
    const [, body] = tokens.accessToken.split(".");
    const { iat: _iat, exp: _exp, ...rest } = JSON.parse(new TextDecoder().decode(base64url.decode(body!))) as JWTPayload & { sub: string };
    return rest;
  };
  [claims, hsClaims] = await Promise.all([payloadOf(ed), payloadOf(hs)]);
});
afterAll(async () => {
  await Promise.all([ed.close(), hs.close()]);
});

const now = () => Math.floor(Date.now() / 1000);
type Header = { alg: string; typ?: string; kid?: string; [k: string]: unknown };

/** A token with the right claims (iss, aud, sub, sid, roles, amr) unless overridden. */
function jwt(payload: JWTPayload, header: Header) {
  return new SignJWT({ iat: now(), exp: now() + 300, ...payload }).setProtectedHeader(header);
}
const edSigned = (payload: JWTPayload = {}, header: Partial<Header> = {}) =>
  jwt({ ...claims, ...payload }, { alg: "EdDSA", typ: "at+jwt", kid: serverKey.kid, ...header }).sign(serverPrivateKey);
const hsSigned = (payload: JWTPayload = {}, header: Partial<Header> = {}, secret = HS_SECRET) =>
  jwt({ ...hsClaims, ...payload }, { alg: "HS256", typ: "at+jwt", ...header }).sign(new TextEncoder().encode(secret));

const enc = (v: unknown) => base64url.encode(JSON.stringify(v));
const me = (server: TestServer, token: string) => server.request("GET", "/auth/me", { token });
async function refused(server: TestServer, token: string) {
  const res = await me(server, token);
  expect(res.status).toBe(401);
  expect(res.body.code).toBe("INVALID_TOKEN");
}

describe("controls: tokens built here are accepted when nothing is wrong", () => {
  test("EdDSA token signed with the server key and right claims -> 200", async () => {
    expect((await me(ed, await edSigned())).status).toBe(200);
  });
  test("HS256 token signed with the server secret and right claims -> 200", async () => {
    expect((await me(hs, await hsSigned())).status).toBe(200);
  });
});

describe("alg pinned", () => {
  test('alg "none" (unsigned) is refused', async () => {
    await refused(ed, `${enc({ alg: "none", typ: "at+jwt" })}.${enc({ ...claims, iat: now(), exp: now() + 300 })}.`);
    await refused(hs, `${enc({ alg: "none", typ: "at+jwt" })}.${enc({ ...hsClaims, iat: now(), exp: now() + 300 })}.`);
  });
  test("HS256 signed with the Ed25519 public key bytes as secret is refused", async () => {
    const x = base64url.decode(serverKey.publicJwk.x!);
    const token = await jwt({ ...claims }, { alg: "HS256", typ: "at+jwt", kid: serverKey.kid }).sign(x);
    await refused(ed, token);
  });
  test("HS256 signed with the JWKS JSON as secret is refused", async () => {
    const jwks = (await ed.request("GET", "/.well-known/jwks.json")).text;
    for (const secret of [jwks, JSON.stringify(serverKey.publicJwk)]) {
      await refused(ed, await jwt({ ...claims }, { alg: "HS256", typ: "at+jwt", kid: serverKey.kid }).sign(new TextEncoder().encode(secret)));
    }
  });
  test("an EdDSA token at an HS256 server is refused", async () => {
    await refused(hs, await jwt({ ...hsClaims }, { alg: "EdDSA", typ: "at+jwt" }).sign(fresh.privateKey));
  });
  test("an HS256 token signed with another secret is refused", async () => {
    await refused(hs, await hsSigned({}, {}, "another-secret-of-at-least-32-characters"));
  });
  test("a stripped signature is refused", async () => {
    const [h, p] = (await edSigned()).split(".");
    await refused(ed, `${h}.${p}.`);
    await refused(ed, `${h}.${p}`);
  });
  test("a token signed with a fresh key under the server's kid is refused", async () => {
    await refused(ed, await jwt({ ...claims }, { alg: "EdDSA", typ: "at+jwt", kid: serverKey.kid }).sign(fresh.privateKey));
  });
  test("jku, jwk and x5u headers pointing at the attacker's key are refused", async () => {
    const jwk = await exportJWK(fresh.publicKey);
    for (const extra of [{ jku: "https://evil.example/jwks.json" }, { jwk }, { x5u: "https://evil.example/cert.pem" }]) {
      await refused(ed, await jwt({ ...claims }, { alg: "EdDSA", typ: "at+jwt", kid: serverKey.kid, ...extra }).sign(fresh.privateKey));
      // Even on a token the server key really signed, such a header is refused.
      await refused(ed, await edSigned({}, extra));
    }
  });
  test("an unknown kid is refused", async () => {
    await refused(ed, await jwt({ ...claims }, { alg: "EdDSA", typ: "at+jwt", kid: "unknown-kid" }).sign(fresh.privateKey));
    await refused(ed, await edSigned({}, { kid: "unknown-kid" }));
  });
});

describe("typ and claims checked", () => {
  for (const typ of ["JWT", "jwt", "refresh+jwt", "id_token"]) {
    test(`typ "${typ}" is refused: only at+jwt is an access token`, async () => {
      await refused(ed, await edSigned({}, { typ }));
      await refused(hs, await hsSigned({}, { typ }));
    });
  }
  test("a token without typ is refused", async () => {
    const { typ: _t, ...header } = { alg: "EdDSA", typ: "at+jwt", kid: serverKey.kid };
    await refused(ed, await jwt({ ...claims }, header).sign(serverPrivateKey));
  });
  test("an expired exp is refused", async () => {
    await refused(ed, await edSigned({ iat: now() - 3600, exp: now() - 10 }));
    await refused(hs, await hsSigned({ iat: now() - 3600, exp: now() - 10 }));
  });
  test("a future nbf is refused", async () => {
    await refused(ed, await edSigned({ nbf: now() + 600 }));
    await refused(hs, await hsSigned({ nbf: now() + 600 }));
  });
  test("a wrong iss is refused", async () => {
    await refused(ed, await edSigned({ iss: "https://evil.example" }));
    await refused(hs, await hsSigned({ iss: "https://evil.example" }));
  });
  test("a wrong aud is refused", async () => {
    await refused(ed, await edSigned({ aud: "https://other-app.example" }));
    await refused(hs, await hsSigned({ aud: "https://other-app.example" }));
  });
  test("a token without exp is refused", async () => {
    const { exp: _e, ...rest } = { ...claims, iat: now(), exp: 0 };
    await refused(ed, await new SignJWT(rest).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: serverKey.kid }).sign(serverPrivateKey));
  });
});
