import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { sessions, users } from "../src/db/schema";
import { AuthError as CoreAuthError } from "../src/errors";
import type { AuthHooks, SessionInfo, SignUpAttempt } from "../src/hooks";
import type { Logger } from "../src/logger";
import { AuthError, buildAuthServer } from "../src/server";
import type { PublicUser } from "../src/users";
import { createTestServer, type TestServer, testDatabase, testStore, uniqueEmail } from "./support/server";

const PASSWORD = "correct horse battery staple";

/** A logger that keeps its lines, to see that an unexpected throw is logged. */
function recordingLogger() {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { logger, lines };
}

/** What the hooks were called with, and how the next calls should behave. */
const calls = { signUps: [] as SignUpAttempt[], signIns: [] as Array<{ user: PublicUser; session: SessionInfo }>, claims: [] as string[] };
let refuseSignUp: ((attempt: SignUpAttempt) => void) | undefined;
let failSignIn: ((user: PublicUser) => void) | undefined;
let claimsFor: (user: PublicUser) => Record<string, unknown> | undefined = () => ({ plan: "pro" });

const hooks: AuthHooks = {
  async beforeSignUp(attempt) {
    await Bun.sleep(1);
    calls.signUps.push(attempt);
    refuseSignUp?.(attempt);
  },
  async afterSignIn(user, session) {
    calls.signIns.push({ user, session });
    failSignIn?.(user);
  },
  accessTokenClaims(user) {
    calls.claims.push(user.id);
    return claimsFor(user);
  },
};

let server: TestServer;
const log = recordingLogger();
const ADMIN = uniqueEmail("hooks-admin");

beforeAll(async () => {
  server = await createTestServer({ ADMIN_EMAILS: ADMIN }, { hooks, logger: log.logger });
}, 60_000);
afterAll(async () => {
  await server.close();
});

const json = { "user-agent": "hooks-test" };

async function register(email = uniqueEmail("hooks")) {
  return server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: json });
}

describe("beforeSignUp", () => {
  test("runs before every path that creates an account, with its email, method, ip and user agent", async () => {
    calls.signUps.length = 0;
    const email = uniqueEmail("before");
    expect((await register(email)).status).toBe(201);
    expect((await server.request("POST", "/auth/anonymous", { headers: json })).status).toBe(201);
    const codeEmail = uniqueEmail("code");
    expect((await server.request("POST", "/auth/code/request", { body: { email: codeEmail } })).status).toBe(202);
    const code = /\b(\d{6})\b/.exec((await server.mailTo(codeEmail, /\d{6}/)).text)?.[1];
    expect((await server.request("POST", "/auth/code/verify", { body: { email: codeEmail, code }, headers: json })).status).toBe(200);

    const admin = await server.ctx.users.create({ email: ADMIN, emailVerified: true });
    const adminToken = (await server.ctx.sessions.create(admin, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
    const invited = uniqueEmail("invited");
    expect((await server.request("POST", "/auth/invitations", { body: { email: invited }, token: adminToken })).status).toBe(201);
    const token = /token=([A-Za-z0-9_%-]+)/.exec((await server.mailTo(invited, /token=/)).text)?.[1] ?? "";
    const accepted = await server.request("POST", "/auth/invitations/accept", { body: { token: decodeURIComponent(token), password: PASSWORD }, headers: json });
    expect(accepted.status).toBe(200);

    expect(calls.signUps).toEqual([
      { email, method: "password", ip: null, userAgent: "hooks-test" },
      { email: null, method: "anonymous", ip: null, userAgent: "hooks-test" },
      { email: codeEmail, method: "magic-code", ip: null, userAgent: "hooks-test" },
      { email: invited, method: "invitation", ip: null, userAgent: "hooks-test" },
    ]);
  });

  test("an AuthError it throws is the answer, exactly, and no account is made", async () => {
    refuseSignUp = (attempt) => {
      if (attempt.email?.endsWith("@blocked.example")) throw new AuthError(403, "SIGNUP_BLOCKED", "This domain may not sign up");
      if (attempt.email === null) throw new AuthError(429, "NO_GUESTS", "No guests today");
    };
    try {
      const email = `someone-${crypto.randomUUID().slice(0, 8)}@blocked.example`;
      const res = await register(email);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ code: "SIGNUP_BLOCKED", message: "This domain may not sign up" });
      expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
      const guest = await server.request("POST", "/auth/anonymous");
      expect(guest.status).toBe(429);
      expect(guest.body).toEqual({ code: "NO_GUESTS", message: "No guests today" });
    } finally {
      refuseSignUp = undefined;
    }
  });

  test("any other throw answers 500 INTERNAL_ERROR with a log line, and nothing is written", async () => {
    refuseSignUp = () => {
      throw new TypeError("the CRM is down");
    };
    try {
      const email = uniqueEmail("crash");
      const before = log.lines.length;
      const res = await register(email);
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ code: "INTERNAL_ERROR", message: "Something went wrong" });
      expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
      const logged = log.lines.slice(before).filter((l) => l.level === "error");
      expect(logged).toHaveLength(1);
      expect(String(logged[0]?.fields?.error)).toContain("the CRM is down");
    } finally {
      refuseSignUp = undefined;
    }
  });
});

describe("afterSignIn", () => {
  test("runs after every new session with the User and {id, amr, ip, userAgent}, not on refresh", async () => {
    const email = uniqueEmail("after");
    calls.signIns.length = 0;
    const registered = await register(email);
    const login = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: json });
    expect(login.status).toBe(200);
    expect(calls.signIns).toEqual([
      { user: registered.body.user, session: { id: decodeJwt(registered.body.accessToken).sid as string, amr: ["pwd"], ip: null, userAgent: "hooks-test" } },
      { user: login.body.user, session: { id: decodeJwt(login.body.accessToken).sid as string, amr: ["pwd"], ip: null, userAgent: "hooks-test" } },
    ]);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: login.body.refreshToken } })).status).toBe(200);
    expect(calls.signIns).toHaveLength(2);
  });

  test("a throw revokes the new session: an AuthError is the answer, anything else a 500", async () => {
    const email = uniqueEmail("after-fail");
    expect((await register(email)).status).toBe(201);
    const user = await server.ctx.users.findByEmail(email);
    for (const [error, status, code] of [
      [new AuthError(403, "NOT_TODAY", "Come back tomorrow"), 403, "NOT_TODAY"],
      [new Error("webhook to the CRM failed"), 500, "INTERNAL_ERROR"],
    ] as const) {
      failSignIn = (u) => {
        if (u.email === email) throw error;
      };
      try {
        const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
        expect(res.status).toBe(status);
        expect(res.body.code).toBe(code);
      } finally {
        failSignIn = undefined;
      }
    }
    const rows = await server.ctx.db.select().from(sessions).where(eq(sessions.userId, user?.id as string));
    // The registration's session lives on; the two refused sign-ins made sessions that are revoked.
    expect(rows).toHaveLength(3);
    expect(rows.filter((s) => s.revokedAt !== null)).toHaveLength(2);
  });
});

describe("accessTokenClaims", () => {
  test("extra claims are merged into every access token: sign-in, refresh, team switch", async () => {
    claimsFor = (user) => ({ plan: "pro", org: { id: user.id.slice(0, 8) } });
    const signedIn = (await register()).body;
    expect(decodeJwt(signedIn.accessToken)).toMatchObject({ plan: "pro", org: { id: signedIn.user.id.slice(0, 8) }, sub: signedIn.user.id });
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: signedIn.refreshToken } });
    expect(decodeJwt(refreshed.body.accessToken)).toMatchObject({ plan: "pro" });
    const team = await server.request("POST", "/auth/teams", { body: { name: "Hooks" }, token: refreshed.body.accessToken });
    const switched = await server.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, token: refreshed.body.accessToken });
    expect(switched.status).toBe(200);
    expect(decodeJwt(switched.body.accessToken)).toMatchObject({ plan: "pro", team: { id: team.body.id, role: "owner" } });
  });

  test("a reserved name returned later answers 500 and writes no session", async () => {
    const email = uniqueEmail("reserved");
    expect((await register(email)).status).toBe(201);
    const user = await server.ctx.users.findByEmail(email);
    claimsFor = (u) => (u.email === email ? { plan: "pro", roles: ["admin"] } : { plan: "pro" });
    try {
      const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      expect(res.status).toBe(500);
      expect(res.body.code).toBe("INTERNAL_ERROR");
      const rows = await server.ctx.db.select().from(sessions).where(eq(sessions.userId, user?.id as string));
      expect(rows).toHaveLength(1);
    } finally {
      claimsFor = () => ({ plan: "pro" });
    }
  });

  test("at start the hook is called once with a sample user, and a reserved name stops the server", async () => {
    const database = await testDatabase();
    try {
      for (const name of ["sub", "sid", "roles", "amr", "team", "auth_time", "act", "iss", "aud", "iat", "exp", "nbf", "jti", "typ"]) {
        const seen: PublicUser[] = [];
        const started = buildAuthServer(
          { LOG_LEVEL: "silent" },
          { database, kv: testStore(), hooks: {
              accessTokenClaims: (user) => {
                seen.push(user);
                return { [name]: "x", plan: "pro" };
              },
            },
          },
        );
        await expect(started).rejects.toThrow(`accessTokenClaims returned the reserved claim "${name}"`);
        expect(seen).toHaveLength(1);
        expect(seen[0]?.email).toBeString();
      }
    } finally {
      await database.close();
    }
  }, 60_000);
});

test("AuthError is exported by the package entry, the class the server answers with", async () => {
  const entry = (await import("../package.json")).exports["."];
  expect(entry.default).toBe("./src/server.ts");
  expect(AuthError).toBe(CoreAuthError);
  const error = new AuthError(409, "TAKEN", "Taken");
  expect([error.status, error.code, error.message]).toEqual([409, "TAKEN", "Taken"]);
  expect(await server.ctx.db.select({ id: users.id }).from(users).limit(1)).toHaveLength(1);
});
