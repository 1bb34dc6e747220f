import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { oauthAccounts } from "../plugins/oauth/schema";
import { newId } from "../src/crypto";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

const APP_URL = "http://localhost:3000";
const CLIENT = { id: "our-client-id", secret: "our-client-secret" };
const FACEBOOK_APP = { id: "1234567890", secret: "fb-app-secret" };

type Person = {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string;
  given: string;
  family: string;
  picture: string;
  /** Microsoft only: the tenant the account lives in, and whether the email's domain owner vouched for it. */
  tenant?: string;
  edov?: boolean;
};

type PendingCode = { person: Person; provider: string; challenge: string; nonce?: string; redirectUri: string };

function person(fields: Partial<Person> = {}): Person {
  return {
    id: String(Math.floor(Math.random() * 1e12)),
    email: uniqueEmail("social"),
    emailVerified: true,
    name: "Grace Brewster Hopper",
    given: "Grace",
    family: "Hopper",
    picture: "https://images.example/grace.png",
    ...fields,
  };
}

function basicCredentials(request: Request): { id: string; secret: string } | null {
  const header = request.headers.get("authorization");
  if (!header?.startsWith("Basic ")) return null;
  const [id, secret] = atob(header.slice(6)).split(":").map(decodeURIComponent);
  return id && secret ? { id, secret } : null;
}

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url");

/**
 * Small fakes of GitHub, Google, Microsoft and Facebook on one Bun.serve (port 0), each under its own path and
 * speaking the provider's documented formats: token endpoints (GitHub's JSON only with Accept: application/json),
 * GitHub's REST API, Google's and Microsoft's signed ID tokens with their JWKS, Facebook's Graph API.
 */
async function startFakeProviders() {
  const keys = await generateKeyPair("RS256", { extractable: true });
  const otherKeys = await generateKeyPair("RS256", { extractable: true });
  const jwks = { keys: [{ ...(await exportJWK(keys.publicKey)), kid: "fake-1", alg: "RS256", use: "sig" }] };
  const codes = new Map<string, PendingCode>();
  const accessTokens = new Map<string, { person: Person; appId: string }>();
  let base = "";

  const issuerOf = (provider: string, p: Person) => (provider === "google" ? `${base}/google` : `${base}/microsoft/${p.tenant ?? "tenant-1"}/v2.0`);

  async function idToken(provider: string, p: Person, nonce: string | undefined, overrides: JWTPayload = {}, key = keys.privateKey) {
    const claims: JWTPayload =
      provider === "google"
        ? { email: p.email, email_verified: p.emailVerified, name: p.name, given_name: p.given, family_name: p.family, picture: p.picture }
        : { email: p.email, name: p.name, tid: p.tenant ?? "tenant-1", ...(p.edov ? { xms_edov: true } : {}) };
    return new SignJWT({ ...claims, ...(nonce ? { nonce } : {}), ...overrides })
      .setProtectedHeader({ alg: "RS256", kid: "fake-1" })
      .setIssuer(String(overrides.iss ?? issuerOf(provider, p)))
      .setAudience(String(overrides.aud ?? CLIENT.id))
      .setSubject(p.id)
      .setIssuedAt()
      .setExpirationTime(typeof overrides.exp === "number" ? overrides.exp : "5m")
      .sign(key);
  }

  function issueAccessToken(p: Person, appId: string): string {
    const token = `at-${newId()}`;
    accessTokens.set(token, { person: p, appId });
    return token;
  }

  /** Checks code, redirect URI and PKCE verifier like a real token endpoint; the code dies on first use. */
  function redeem(provider: string, form: URLSearchParams): PendingCode | null {
    const pending = codes.get(form.get("code") ?? "");
    codes.delete(form.get("code") ?? "");
    if (!pending || pending.provider !== provider || form.get("grant_type") !== "authorization_code") return null;
    if (form.get("redirect_uri") !== pending.redirectUri || s256(form.get("code_verifier") ?? "") !== pending.challenge) return null;
    return pending;
  }

  const json = (body: unknown, status = 200) => Response.json(body, { status });

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const path = url.pathname;
      const text = request.method === "POST" ? await request.text() : "";
      const form = request.method === "POST" ? new URLSearchParams(text) : url.searchParams;

      if (path === "/github/token") {
        if (form.get("client_id") !== CLIENT.id || form.get("client_secret") !== CLIENT.secret) return json({ error: "incorrect_client_credentials" });
        const pending = redeem("github", form);
        // GitHub answers 200 even for a bad code, with an error field.
        const body: Record<string, string> = pending
          ? { access_token: issueAccessToken(pending.person, CLIENT.id), token_type: "bearer", scope: "read:user,user:email" }
          : { error: "bad_verification_code", error_description: "The code passed is incorrect or expired." };
        if (request.headers.get("accept") !== "application/json") return new Response(new URLSearchParams(body).toString());
        return json(body);
      }
      if (path.startsWith("/github/api/")) {
        const apiPath = path.slice("/github/api".length);
        const app = /^\/applications\/([^/]+)\/token$/.exec(apiPath);
        if (app && request.method === "POST") {
          const credentials = basicCredentials(request);
          if (credentials?.id !== app[1] || credentials.secret !== CLIENT.secret) return json({ message: "Not Found" }, 404);
          const { access_token } = JSON.parse(text) as { access_token?: string };
          const known = accessTokens.get(access_token ?? "");
          return known && known.appId === app[1] ? json({ token: access_token, user: { id: Number(known.person.id) } }) : json({ message: "Not Found" }, 404);
        }
        const known = accessTokens.get(request.headers.get("authorization")?.replace(/^Bearer /, "") ?? "");
        if (!known) return json({ message: "Bad credentials" }, 401);
        const p = known.person;
        if (apiPath === "/user") return json({ id: Number(p.id), login: `user${p.id}`, name: p.name, avatar_url: p.picture, email: null });
        if (apiPath === "/user/emails") {
          return json([
            { email: `noreply-${p.id}@users.noreply.github.com`, primary: false, verified: true, visibility: null },
            { email: p.email, primary: true, verified: p.emailVerified, visibility: "private" },
          ]);
        }
      }
      if (path === "/google/jwks" || path === "/microsoft/keys") return json(jwks);
      if (path === "/google/token" || path === "/microsoft/token") {
        const provider = path.split("/")[1] ?? "";
        const credentials = basicCredentials(request);
        if (credentials?.id !== CLIENT.id || credentials.secret !== CLIENT.secret) return json({ error: "invalid_client" }, 401);
        const pending = redeem(provider, form);
        if (!pending) return json({ error: "invalid_grant" }, 400);
        return json({
          access_token: issueAccessToken(pending.person, CLIENT.id),
          token_type: "Bearer",
          expires_in: 3599,
          id_token: await idToken(provider, pending.person, pending.nonce),
        });
      }
      if (path === "/facebook/graph/oauth/access_token") {
        if (form.get("client_id") !== FACEBOOK_APP.id || form.get("client_secret") !== FACEBOOK_APP.secret) {
          return json({ error: { message: "Error validating client secret.", type: "OAuthException", code: 1 } }, 400);
        }
        const pending = redeem("facebook", form);
        if (!pending) return json({ error: { message: "Invalid verification code format.", type: "OAuthException", code: 100 } }, 400);
        return json({ access_token: issueAccessToken(pending.person, FACEBOOK_APP.id), token_type: "bearer", expires_in: 5183944 });
      }
      if (path === "/facebook/graph/debug_token") {
        if (url.searchParams.get("access_token") !== `${FACEBOOK_APP.id}|${FACEBOOK_APP.secret}`) return json({ error: { code: 190 } }, 400);
        const known = accessTokens.get(url.searchParams.get("input_token") ?? "");
        if (!known) return json({ data: { is_valid: false, error: { code: 190, message: "Invalid OAuth access token." } } });
        return json({ data: { app_id: known.appId, type: "USER", is_valid: true, user_id: known.person.id, scopes: ["email", "public_profile"] } });
      }
      if (path === "/facebook/graph/me") {
        const known = accessTokens.get(url.searchParams.get("access_token") ?? "");
        if (!known) return json({ error: { message: "Invalid OAuth access token.", type: "OAuthException", code: 190 } }, 400);
        const p = known.person;
        return json({ id: p.id, email: p.email, name: p.name, first_name: p.given, last_name: p.family, picture: { data: { url: p.picture, is_silhouette: false } } });
      }
      return json({ error: "not found" }, 404);
    },
  });
  base = `http://127.0.0.1:${server.port}`;

  return {
    base,
    /** The consent screen: checks what our redirect asked for and sends the browser back with a code. */
    authorize(location: URL, provider: string, p: Person): string {
      expect(location.searchParams.get("code_challenge_method")).toBe("S256");
      const code = `code-${newId()}`;
      codes.set(code, {
        person: p,
        provider,
        challenge: location.searchParams.get("code_challenge") ?? "",
        nonce: location.searchParams.get("nonce") ?? undefined,
        redirectUri: location.searchParams.get("redirect_uri") ?? "",
      });
      return `?code=${code}&state=${location.searchParams.get("state")}`;
    },
    idToken,
    foreignKey: otherKeys.privateKey,
    issueAccessToken,
    stop: () => server.stop(true),
  };
}

let fake: Awaited<ReturnType<typeof startFakeProviders>>;
let server: TestServer;

beforeAll(async () => {
  fake = await startFakeProviders();
  const b = fake.base;
  server = await createTestServer({
    APP_URL,
    OAUTH_GITHUB_CLIENT_ID: CLIENT.id,
    OAUTH_GITHUB_CLIENT_SECRET: CLIENT.secret,
    OAUTH_GITHUB_AUTHORIZATION_URL: `${b}/github/authorize`,
    OAUTH_GITHUB_TOKEN_URL: `${b}/github/token`,
    OAUTH_GITHUB_API_URL: `${b}/github/api`,
    OAUTH_GOOGLE_CLIENT_ID: CLIENT.id,
    OAUTH_GOOGLE_CLIENT_SECRET: CLIENT.secret,
    OAUTH_GOOGLE_AUTHORIZATION_URL: `${b}/google/authorize`,
    OAUTH_GOOGLE_TOKEN_URL: `${b}/google/token`,
    OAUTH_GOOGLE_JWKS_URL: `${b}/google/jwks`,
    OAUTH_GOOGLE_ISSUER: `${b}/google`,
    OAUTH_MICROSOFT_CLIENT_ID: CLIENT.id,
    OAUTH_MICROSOFT_CLIENT_SECRET: CLIENT.secret,
    OAUTH_MICROSOFT_AUTHORIZATION_URL: `${b}/microsoft/authorize`,
    OAUTH_MICROSOFT_TOKEN_URL: `${b}/microsoft/token`,
    OAUTH_MICROSOFT_JWKS_URL: `${b}/microsoft/keys`,
    OAUTH_MICROSOFT_ISSUER: `${b}/microsoft/{tenantid}/v2.0`,
    OAUTH_FACEBOOK_CLIENT_ID: FACEBOOK_APP.id,
    OAUTH_FACEBOOK_CLIENT_SECRET: FACEBOOK_APP.secret,
    OAUTH_FACEBOOK_AUTHORIZATION_URL: `${b}/facebook/dialog/oauth`,
    OAUTH_FACEBOOK_GRAPH_URL: `${b}/facebook/graph`,
  });
}, 60_000);
afterAll(async () => {
  await server.close();
  fake.stop();
});

/** Our redirect, the fake's consent, our callback: answers where the browser lands. */
async function redirectFlow(provider: string, p: Person, token?: string): Promise<URL> {
  const browser = server.browser();
  const start = await browser.request("GET", `/auth/oauth/${provider}`, { token });
  expect(start.status).toBe(302);
  const location = new URL(start.headers.get("location") ?? "");
  const back = await browser.request("GET", `/auth/oauth/${provider}/callback${fake.authorize(location, provider, p)}`);
  expect(back.status).toBe(302);
  return new URL(back.headers.get("location") ?? "");
}

async function signIn(provider: string, p: Person, token?: string) {
  const landed = await redirectFlow(provider, p, token);
  expect(landed.searchParams.get("error")).toBeNull();
  const res = await server.request("POST", "/auth/oauth/exchange", { body: { code: landed.searchParams.get("code") } });
  expect(res.status).toBe(200);
  return res.body;
}

const tokenRoute = (provider: string, body: Record<string, unknown>, token?: string) =>
  server.request("POST", `/auth/oauth/${provider}/token`, { body, token });

async function verifiedLocalUser() {
  return server.ctx.users.create({ email: uniqueEmail("local"), emailVerified: true });
}

describe("github", () => {
  test("redirect: authorization URL at the configured endpoint with state and PKCE, no nonce", async () => {
    const res = await server.request("GET", "/auth/oauth/github");
    const location = new URL(res.headers.get("location") ?? "");
    expect(`${location.origin}${location.pathname}`).toBe(`${fake.base}/github/authorize`);
    expect(location.searchParams.get("client_id")).toBe(CLIENT.id);
    expect(location.searchParams.get("redirect_uri")).toBe(`${APP_URL}/auth/oauth/github/callback`);
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.has("nonce")).toBe(false);
  });

  test("redirect flow: a new user from /user and the primary verified address of /user/emails", async () => {
    const p = person();
    const body = await signIn("github", p);
    expect(body.user).toMatchObject({ email: p.email, emailVerified: true, firstName: "Grace", lastName: "Brewster Hopper", image: p.picture });
    const accounts = await server.request("GET", "/auth/accounts", { token: body.accessToken });
    expect(accounts.body).toEqual([{ provider: "github", providerAccountId: p.id, email: p.email, createdAt: expect.any(String) }]);
  });

  test("a GitHub account whose primary email is unverified uses the verified one, never the unverified", async () => {
    const p = person({ emailVerified: false });
    const body = await signIn("github", p);
    expect(body.user.email).toBe(`noreply-${p.id}@users.noreply.github.com`);
    expect(body.user.emailVerified).toBe(true);
  });

  test("a verified GitHub email links to the verified local account with it", async () => {
    const local = await verifiedLocalUser();
    const body = await signIn("github", person({ email: local.email ?? "" }));
    expect(body.user.id).toBe(local.id);
  });

  test("a code GitHub refuses (200 with error) ends in error=OAUTH_PROVIDER_ERROR", async () => {
    const browser = server.browser();
    const start = await browser.request("GET", "/auth/oauth/github");
    const state = new URL(start.headers.get("location") ?? "").searchParams.get("state");
    const res = await browser.request("GET", `/auth/oauth/github/callback?code=made-up&state=${state}`);
    expect(new URL(res.headers.get("location") ?? "").searchParams.get("error")).toBe("OAUTH_PROVIDER_ERROR");
  });

  test("token route: access tokens of our app sign in, with modes; other apps' and unknown tokens are 401", async () => {
    const p = person();
    const accessToken = fake.issueAccessToken(p, CLIENT.id);
    expect((await tokenRoute("github", { accessToken, mode: "signin" })).body.code).toBe("SIGNUP_REQUIRED");
    const signup = await tokenRoute("github", { accessToken, mode: "signup" });
    expect(signup.status).toBe(200);
    expect(signup.body.user.email).toBe(p.email);
    expect((await tokenRoute("github", { accessToken, mode: "signup" })).body.code).toBe("ACCOUNT_EXISTS");
    expect((await tokenRoute("github", { accessToken, mode: "signin" })).body.user.id).toBe(signup.body.user.id);

    for (const bad of [fake.issueAccessToken(person(), "some-other-app"), "made-up-token"]) {
      const res = await tokenRoute("github", { accessToken: bad });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_ACCESS_TOKEN");
    }
    const idOnly = await tokenRoute("github", { idToken: "x" });
    expect(idOnly.status).toBe(400);
    expect(idOnly.body.code).toBe("VALIDATION_ERROR");
  });
});

describe("google", () => {
  test("redirect flow: nonce sent and checked, ID token verified with the fake's JWKS", async () => {
    const p = person();
    const start = await server.request("GET", "/auth/oauth/google");
    expect(new URL(start.headers.get("location") ?? "").searchParams.get("nonce")).toBeTruthy();
    const body = await signIn("google", p);
    expect(body.user).toMatchObject({ email: p.email, emailVerified: true, firstName: "Grace", lastName: "Hopper", image: p.picture });
  });

  test("token route: verified ID tokens sign in by mode; wrong aud, iss, key, expiry, nonce are 401", async () => {
    const p = person();
    const idToken = await fake.idToken("google", p, undefined);
    expect((await tokenRoute("google", { idToken, mode: "signin" })).status).toBe(404);
    const signup = await tokenRoute("google", { idToken, mode: "signup" });
    expect(signup.status).toBe(200);
    expect((await tokenRoute("google", { idToken, mode: "signup" })).status).toBe(409);
    expect((await tokenRoute("google", { idToken })).body.user.id).toBe(signup.body.user.id);

    const bad = [
      await fake.idToken("google", p, undefined, { aud: "someone-else" }),
      await fake.idToken("google", p, undefined, { iss: "https://accounts.google.com" }),
      await fake.idToken("google", p, undefined, {}, fake.foreignKey),
      await fake.idToken("google", p, undefined, { exp: Math.floor(Date.now() / 1000) - 600 }),
    ];
    for (const token of bad) expect((await tokenRoute("google", { idToken: token })).body.code).toBe("INVALID_ID_TOKEN");
    const withNonce = await fake.idToken("google", p, "nonce-a");
    expect((await tokenRoute("google", { idToken: withNonce, nonce: "nonce-b" })).status).toBe(401);
    expect((await tokenRoute("google", { accessToken: "x" })).status).toBe(400);
  });

  test("concurrent first sign-ins of one identity end in one account", async () => {
    const idToken = await fake.idToken("google", person(), undefined);
    const results = await Promise.all(Array.from({ length: 4 }, () => tokenRoute("google", { idToken })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(results.map((r) => r.body.user.id)).size).toBe(1);
  });

  test("an unverified Google email does not take over a verified local account", async () => {
    const local = await verifiedLocalUser();
    const idToken = await fake.idToken("google", person({ email: local.email ?? "", emailVerified: false }), undefined);
    const res = await tokenRoute("google", { idToken });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("ACCOUNT_EXISTS");
  });

  test("a guest's Bearer token on the token route upgrades the guest in place", async () => {
    const guest = await server.request("POST", "/auth/anonymous");
    const idToken = await fake.idToken("google", person(), undefined);
    const res = await tokenRoute("google", { idToken }, guest.body.accessToken);
    expect(res.body.user).toMatchObject({ id: guest.body.user.id, isAnonymous: false, emailVerified: true });
  });
});

describe("microsoft", () => {
  test("redirect flow: the tenant's issuer is checked; emails count as verified only with xms_edov", async () => {
    const local = await verifiedLocalUser();
    const unproven = await redirectFlow("microsoft", person({ email: local.email ?? "" }));
    expect(unproven.searchParams.get("error")).toBe("ACCOUNT_EXISTS");
    const proven = await signIn("microsoft", person({ email: local.email ?? "", edov: true }));
    expect(proven.user.id).toBe(local.id);
    const fresh = await signIn("microsoft", person({ tenant: "tenant-2" }));
    expect(fresh.user.emailVerified).toBe(false);
  });

  test("token route: an issuer naming another tenant than the token's tid is 401", async () => {
    const p = person({ tenant: "tenant-3" });
    const good = await fake.idToken("microsoft", p, undefined);
    expect((await tokenRoute("microsoft", { idToken: good, mode: "signup" })).status).toBe(200);
    const mixed = await fake.idToken("microsoft", p, undefined, { iss: `${fake.base}/microsoft/tenant-4/v2.0` });
    expect((await tokenRoute("microsoft", { idToken: mixed })).body.code).toBe("INVALID_ID_TOKEN");
  });
});

describe("facebook", () => {
  test("redirect flow: app secret in the body, profile from /me; Facebook emails never count as verified", async () => {
    const p = person();
    const body = await signIn("facebook", p);
    expect(body.user).toMatchObject({ email: p.email, emailVerified: false, firstName: "Grace", lastName: "Hopper", image: p.picture });
    const local = await verifiedLocalUser();
    expect((await redirectFlow("facebook", person({ email: local.email ?? "" }))).searchParams.get("error")).toBe("ACCOUNT_EXISTS");
  });

  test("token route: debug_token must say valid and issued to our app", async () => {
    const p = person();
    const accessToken = fake.issueAccessToken(p, FACEBOOK_APP.id);
    const signup = await tokenRoute("facebook", { accessToken, mode: "signup" });
    expect(signup.status).toBe(200);
    expect((await tokenRoute("facebook", { accessToken, mode: "signin" })).body.user.id).toBe(signup.body.user.id);
    for (const bad of [fake.issueAccessToken(person(), "another-app"), "made-up"]) {
      const res = await tokenRoute("facebook", { accessToken: bad });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("INVALID_ACCESS_TOKEN");
    }
  });
});

describe("DELETE /auth/accounts/:provider counts only the ways in that enabled plugins give", () => {
  test("with the password plugin off, a stored password is no way in: unlinking the last provider is 409", async () => {
    const s = await createTestServer({ AUTH_PLUGINS: "oauth", OAUTH_GITHUB_CLIENT_ID: "id", OAUTH_GITHUB_CLIENT_SECRET: "secret" });
    try {
      const user = await s.ctx.users.create({ email: uniqueEmail("no-password-plugin"), emailVerified: true, passwordHash: await s.ctx.passwords.hash("unused-pass-phrase") });
      await s.ctx.db.insert(oauthAccounts).values({ id: newId(), userId: user.id, provider: "github", providerAccountId: `gh-${user.id}` });
      const { accessToken } = await s.ctx.sessions.create(user, { amr: ["oauth"], meta: { ip: null, userAgent: null } });
      const refused = await s.request("DELETE", "/auth/accounts/github", { token: accessToken });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe("LAST_SIGN_IN_METHOD");
    } finally {
      await s.close();
    }
  });
});
