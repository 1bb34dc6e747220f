import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: mass assignment and prototype pollution. Extra fields are ignored (schemas strip unknown keys) or
 * refused, on every POST and PATCH route of the OpenAPI spec; later requests are unaffected.
 */
const PASSWORD = "plum-kettle-orbit-93";
let server: TestServer;
let routes: Array<{ method: string; path: string }>;

beforeAll(async () => {
  server = await createTestServer();
  const spec = await server.request("GET", "/docs/json");
  routes = [];
  for (const [path, ops] of Object.entries(spec.body.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) if (method === "post" || method === "patch") routes.push({ method: method.toUpperCase(), path });
  }
});
afterAll(async () => {
  await server.close();
});

const EXTRAS = {
  roles: ["admin"],
  emailVerified: true,
  userId: "00000000-0000-7000-8000-000000000000",
  id: "00000000-0000-7000-8000-000000000001",
  teamId: "00000000-0000-7000-8000-000000000002",
  isAnonymous: false,
  mfaEnabled: true,
  passwordHash: "$argon2id$forged",
  role: "owner",
};
/** Raw JSON, so `__proto__` is an own key on the wire, as an attacker would send it. */
const POLLUTING = '{"__proto__":{"polluted":"yes","roles":["admin"]},"constructor":{"prototype":{"polluted":"yes"}}}';

const fillPath = (path: string) => path.replace(/\{[^}]+\}/g, "00000000-0000-7000-8000-000000000003").replace(/:[a-zA-Z]+/g, "00000000-0000-7000-8000-000000000003");

describe("every POST and PATCH route", () => {
  test("the spec lists the routes under test", () => {
    expect(routes.length).toBeGreaterThan(20);
  });

  test("extra fields and __proto__/constructor bodies (JSON and form) never cause a 5xx, and nothing is polluted", async () => {
    for (const { method, path } of routes) {
      // A fresh user per route: a route such as /logout must not leave the next ones testing only the 401 path.
      const { tokens } = await createSignedInUser(server);
      for (const opts of [
        { body: { email: uniqueEmail("ma"), password: PASSWORD, name: "n", ...EXTRAS } },
        { body: POLLUTING },
        { form: { "__proto__[polluted]": "yes", "constructor[prototype][polluted]": "yes", roles: "admin", emailVerified: "true" } },
      ]) {
        const res = await server.request(method, fillPath(path), { ...opts, token: tokens.accessToken });
        expect({ route: `${method} ${path}`, status: res.status < 500 }).toEqual({ route: `${method} ${path}`, status: true });
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as unknown as Record<string, unknown>).roles).toBeUndefined();
    const fresh = await server.request("POST", "/auth/register", { body: { email: uniqueEmail("fresh"), password: PASSWORD } });
    expect(fresh.body.user.roles).toEqual(["user"]);
  });
});

describe("targeted routes ignore the fields that grant privileges", () => {
  test("register with roles, emailVerified, id, isAnonymous, mfaEnabled: all ignored", async () => {
    const email = uniqueEmail("reg");
    const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD, ...EXTRAS } });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ roles: ["user"], emailVerified: false, isAnonymous: false, mfaEnabled: false });
    expect(res.body.user.id).not.toBe(EXTRAS.id);
  });

  test("register with a __proto__ body: roles stay [\"user\"]", async () => {
    const email = uniqueEmail("proto");
    const body = `{"email":"${email}","password":"${PASSWORD}","__proto__":{"roles":["admin"],"emailVerified":true}}`;
    const res = await server.request("POST", "/auth/register", { body });
    expect(res.status).toBe(201);
    expect(res.body.user.roles).toEqual(["user"]);
    expect(res.body.user.emailVerified).toBe(false);
  });

  test("PATCH /me with roles, email, emailVerified, id, mfaEnabled, isAnonymous: only profile fields change", async () => {
    const { user, tokens } = await createSignedInUser(server, { emailVerified: false });
    const res = await server.request("PATCH", "/auth/me", {
      token: tokens.accessToken,
      body: { firstName: "Ada", email: "attacker@evil.example", ...EXTRAS },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, email: user.email, firstName: "Ada", roles: ["user"], emailVerified: false, mfaEnabled: false });
    const stored = await server.ctx.users.findById(user.id);
    expect(stored?.passwordHash).toBeNull();
  });

  test("PATCH /me as a form with __proto__ keys: only profile fields change", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const res = await server.request("PATCH", "/auth/me", {
      token: tokens.accessToken,
      form: { lastName: "Lovelace", "__proto__[roles]": "admin", roles: "admin" },
    });
    expect(res.status).toBe(200);
    expect(res.body.roles).toEqual(["user"]);
    expect(res.body.id).toBe(user.id);
  });

  test("anonymous sign-in with roles and isAnonymous=false: still a guest with roles [\"user\"]", async () => {
    const res = await server.request("POST", "/auth/anonymous", { body: EXTRAS });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ isAnonymous: true, emailVerified: false });
    expect(res.body.user.roles).not.toContain("admin");
  });

  test("team creation with id and userId: the team gets a server id and the caller is its owner", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("POST", "/auth/teams", { token: tokens.accessToken, body: { name: "Mine", ...EXTRAS } });
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(EXTRAS.id);
    const teams = await server.request("GET", "/auth/teams", { token: tokens.accessToken });
    expect(teams.body.map((t: { id: string }) => t.id)).toContain(res.body.id);
  });

  test("magic code verify with extras: the new account has roles [\"user\"]", async () => {
    const email = uniqueEmail("mc");
    await server.request("POST", "/auth/code/request", { body: { email, ...EXTRAS } });
    await Bun.sleep(0);
    const code = /\b(\d{6})\b/.exec(server.mailer.last(email)?.text ?? "")?.[1];
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code, ...EXTRAS } });
    expect(res.status).toBe(200);
    expect(res.body.user.roles).toEqual(["user"]);
    expect(res.body.user.mfaEnabled).toBe(false);
  });
});
