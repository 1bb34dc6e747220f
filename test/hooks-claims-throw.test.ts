import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { type SessionRow, sessions } from "../src/db/schema";
import type { AuthHooks } from "../src/hooks";
import type { Logger } from "../src/logger";
import { AuthError } from "../src/server";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";

/**
 * `accessTokenClaims` failing at request time (API.md, Library mode): an AuthError is the answer, any other throw or a
 * reserved name a 500 with a log line, and on every path that issues an access token (sign-in, refresh, team switch,
 * reauth) nothing is left half-done: no session, no spent refresh token, no team or auth_time changed.
 */

const PASSWORD = "correct horse battery staple";
const GRACE_S = 10;

type Failure = {
  name: string;
  status: number;
  code: string;
  /** What the one error line says, or undefined when an AuthError is answered as is (and nothing is logged). */
  logged?: string;
  claims(): Record<string, unknown>;
};

const FAILURES: Failure[] = [
  {
    name: "a plain Error",
    status: 500,
    code: "INTERNAL_ERROR",
    logged: "the claims service is down",
    claims() {
      throw new Error("the claims service is down");
    },
  },
  {
    name: "an AuthError",
    status: 403,
    code: "CLAIMS_REFUSED",
    claims() {
      throw new AuthError(403, "CLAIMS_REFUSED", "No tokens for this account today");
    },
  },
  { name: "a reserved name", status: 500, code: "INTERNAL_ERROR", logged: 'reserved claim "roles"', claims: () => ({ plan: "pro", roles: ["admin"] }) },
];

/** How the hook behaves for each user id; every other user (and the sample user at start) gets `{plan: "pro"}`. */
const failingFor = new Map<string, Failure>();
const hooks: AuthHooks = {
  async accessTokenClaims(user) {
    await Bun.sleep(1);
    const failure = failingFor.get(user.id);
    return failure ? failure.claims() : { plan: "pro" };
  },
};

const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };

const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ REFRESH_REUSE_GRACE_S: GRACE_S }, { hooks, logger, clock });
}, 60_000);
afterAll(async () => {
  await server.close();
});

type Tokens = { user: { id: string; email: string }; accessToken: string; refreshToken: string };

async function signUp(email = uniqueEmail("claims-throw")): Promise<Tokens> {
  const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(201);
  return res.body;
}

/** Runs `work` while the hook fails for this user. */
async function whileFailing<T>(userId: string, failure: Failure, work: () => Promise<T>): Promise<T> {
  failingFor.set(userId, failure);
  try {
    return await work();
  } finally {
    failingFor.delete(userId);
  }
}

/** The failure's answer, its one log line (none for an AuthError), and no secret in anything logged since `from`. */
function expectRefused(res: TestResponse, failure: Failure, from: number, secrets: string[]) {
  expect(res.status).toBe(failure.status);
  if (failure.logged) expect(res.body).toEqual({ code: "INTERNAL_ERROR", message: "Something went wrong" });
  else expect(res.body).toEqual({ code: "CLAIMS_REFUSED", message: "No tokens for this account today" });
  const logged = lines.slice(from);
  const errors = logged.filter((l) => l.level === "error");
  if (failure.logged) {
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.fields?.error)).toContain(failure.logged);
  } else {
    expect(errors).toHaveLength(0);
  }
  const text = JSON.stringify(logged);
  for (const secret of secrets) expect(text).not.toContain(secret);
  // No JWT, whoever's.
  expect(text).not.toContain("eyJ");
}

const sidOf = (accessToken: string) => decodeJwt(accessToken).sid as string;

async function sessionRow(sessionId: string): Promise<SessionRow> {
  const [row] = await server.ctx.db.select().from(sessions).where(eq(sessions.id, sessionId));
  if (!row) throw new Error(`no session ${sessionId}`);
  return row;
}

/** The columns a failed issue must leave as they were. */
const stateOf = (row: SessionRow) => ({
  refreshGen: row.refreshGen,
  refreshHash: row.refreshHash,
  refreshIssuedAt: row.refreshIssuedAt.toISOString(),
  teamId: row.teamId,
  teamRole: row.teamRole,
  authTime: row.authTime.toISOString(),
  revokedAt: row.revokedAt,
});

const refresh = (refreshToken: string) => server.request("POST", "/auth/refresh", { body: { refreshToken } });

describe("sign-in (password login) with a failing accessTokenClaims", () => {
  for (const failure of FAILURES) {
    test(`${failure.name}: answers ${failure.status} ${failure.code}, no session is left alive, the log holds no password or token`, async () => {
      const email = uniqueEmail("claims-sign-in");
      const signedUp = await signUp(email);
      const from = lines.length;
      const res = await whileFailing(signedUp.user.id, failure, () => server.request("POST", "/auth/login", { body: { email, password: PASSWORD } }));
      expectRefused(res, failure, from, [PASSWORD, signedUp.accessToken, signedUp.refreshToken]);

      // The registration's session is the only one, in the database and as the user sees them.
      const rows = await server.ctx.db.select().from(sessions).where(eq(sessions.userId, signedUp.user.id));
      expect(rows.map((s) => s.id)).toEqual([sidOf(signedUp.accessToken)]);
      const listed = await server.request("GET", "/auth/sessions", { token: signedUp.accessToken });
      expect(listed.status).toBe(200);
      expect(listed.body.map((s: { id: string }) => s.id)).toEqual([sidOf(signedUp.accessToken)]);

      const again = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      expect(again.status).toBe(200);
      expect(decodeJwt(again.body.accessToken)).toMatchObject({ plan: "pro" });
    });
  }
});

describe("refresh with a failing accessTokenClaims", () => {
  for (const failure of FAILURES) {
    test(`${failure.name}: answers ${failure.status}, retries fail alike, and once the hook works the same token refreshes, even after the grace window`, async () => {
      const signedUp = await signUp();
      const sid = sidOf(signedUp.accessToken);
      const before = stateOf(await sessionRow(sid));

      const from = lines.length;
      const first = await whileFailing(signedUp.user.id, failure, () => refresh(signedUp.refreshToken));
      expectRefused(first, failure, from, [PASSWORD, signedUp.accessToken, signedUp.refreshToken]);
      const retriedFrom = lines.length;
      const retried = await whileFailing(signedUp.user.id, failure, () => refresh(signedUp.refreshToken));
      expectRefused(retried, failure, retriedFrom, [signedUp.refreshToken]);

      clock.advance(GRACE_S + 1);
      const later = await refresh(signedUp.refreshToken);
      expect({ status: later.status, code: later.body.code }).toEqual({ status: 200, code: undefined });
      expect(decodeJwt(later.body.accessToken)).toMatchObject({ sid, plan: "pro" });
      expect(before.revokedAt).toBeNull();
      expect((await sessionRow(sid)).revokedAt).toBeNull();
      expect((await sessionRow(sid)).refreshGen).toBe(before.refreshGen + 1);

      // The chain goes on, and the session's tokens are good.
      const next = await refresh(later.body.refreshToken);
      expect(next.status).toBe(200);
      expect((await server.request("GET", "/auth/session", { token: next.body.accessToken })).status).toBe(200);
      expect((await server.request("GET", "/auth/session", { token: signedUp.accessToken })).status).toBe(200);
    });
  }

  test("a throw leaves the session row as it was: same generation, hash and issue time", async () => {
    const signedUp = await signUp();
    const sid = sidOf(signedUp.accessToken);
    const before = stateOf(await sessionRow(sid));
    const res = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () => refresh(signedUp.refreshToken));
    expect(res.status).toBe(500);
    expect(stateOf(await sessionRow(sid))).toEqual(before);
  });

  test("within the grace window, once the hook works again, the same token refreshes", async () => {
    const signedUp = await signUp();
    const res = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () => refresh(signedUp.refreshToken));
    expect(res.status).toBe(500);
    const retried = await refresh(signedUp.refreshToken);
    expect(retried.status).toBe(200);
    expect(decodeJwt(retried.body.accessToken)).toMatchObject({ sid: sidOf(signedUp.accessToken), plan: "pro" });
    expect((await refresh(retried.body.refreshToken)).status).toBe(200);
  });

  test("a token already rotated by another tab: a throw on the reissue within the grace window leaves the pair to be reissued later", async () => {
    const signedUp = await signUp();
    const won = await refresh(signedUp.refreshToken);
    expect(won.status).toBe(200);
    const lost = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () => refresh(signedUp.refreshToken));
    expect(lost.status).toBe(500);
    const reissued = await refresh(signedUp.refreshToken);
    expect(reissued.status).toBe(200);
    expect(reissued.body.refreshToken).toBe(won.body.refreshToken);
  });
});

describe("team switch with a failing accessTokenClaims", () => {
  for (const failure of FAILURES) {
    test(`${failure.name}: answers ${failure.status}; the session's team and its old access and refresh tokens are as they were`, async () => {
      const signedUp = await signUp();
      const sid = sidOf(signedUp.accessToken);
      const team = await server.request("POST", "/auth/teams", { body: { name: "Claims" }, token: signedUp.accessToken });
      expect(team.status).toBe(201);
      const before = stateOf(await sessionRow(sid));

      const from = lines.length;
      const res = await whileFailing(signedUp.user.id, failure, () =>
        server.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, token: signedUp.accessToken }),
      );
      expectRefused(res, failure, from, [PASSWORD, signedUp.accessToken, signedUp.refreshToken]);

      const session = await server.request("GET", "/auth/session", { token: signedUp.accessToken });
      expect(session.status).toBe(200);
      expect(session.body.session.teamId).toBeNull();
      clock.advance(GRACE_S + 1);
      const refreshed = await refresh(signedUp.refreshToken);
      expect({ status: refreshed.status, code: refreshed.body.code }).toEqual({ status: 200, code: undefined });
      expect(decodeJwt(refreshed.body.accessToken).team).toBeUndefined();
      expect(stateOf(await sessionRow(sid))).toMatchObject({ teamId: null, teamRole: null, revokedAt: null, refreshGen: before.refreshGen + 1 });

      const switched = await server.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, token: refreshed.body.accessToken });
      expect(switched.status).toBe(200);
      expect(decodeJwt(switched.body.accessToken)).toMatchObject({ plan: "pro", team: { id: team.body.id, role: "owner" } });
    });
  }

  test("a throw leaves the session row as it was", async () => {
    const signedUp = await signUp();
    const sid = sidOf(signedUp.accessToken);
    const team = await server.request("POST", "/auth/teams", { body: { name: "Claims" }, token: signedUp.accessToken });
    const before = stateOf(await sessionRow(sid));
    const res = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () =>
      server.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, token: signedUp.accessToken }),
    );
    expect(res.status).toBe(500);
    expect(stateOf(await sessionRow(sid))).toEqual(before);
  });

  test("with the hook working, a team the caller is not in is still 403 NOT_A_MEMBER and changes nothing", async () => {
    const owner = await signUp();
    const other = await signUp();
    const team = await server.request("POST", "/auth/teams", { body: { name: "Not yours" }, token: owner.accessToken });
    const sid = sidOf(other.accessToken);
    const before = stateOf(await sessionRow(sid));
    const res = await server.request("POST", "/auth/teams/switch", { body: { teamId: team.body.id }, token: other.accessToken });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("NOT_A_MEMBER");
    expect(stateOf(await sessionRow(sid))).toEqual(before);
  });
});

describe("reauth with a failing accessTokenClaims", () => {
  for (const failure of FAILURES) {
    test(`${failure.name}: answers ${failure.status}; auth_time and the old access and refresh tokens are as they were`, async () => {
      const signedUp = await signUp();
      const sid = sidOf(signedUp.accessToken);
      const authTime = decodeJwt(signedUp.accessToken).auth_time as number;
      // A minute on: a reauth that went through would move auth_time.
      clock.advance(60);
      const before = stateOf(await sessionRow(sid));

      const from = lines.length;
      const res = await whileFailing(signedUp.user.id, failure, () =>
        server.request("POST", "/auth/reauth", { body: { password: PASSWORD }, token: signedUp.accessToken }),
      );
      expectRefused(res, failure, from, [PASSWORD, signedUp.accessToken, signedUp.refreshToken]);

      expect((await server.request("GET", "/auth/session", { token: signedUp.accessToken })).status).toBe(200);
      clock.advance(GRACE_S + 1);
      const refreshed = await refresh(signedUp.refreshToken);
      expect({ status: refreshed.status, code: refreshed.body.code }).toEqual({ status: 200, code: undefined });
      expect(decodeJwt(refreshed.body.accessToken).auth_time).toBe(authTime);
      const after = await sessionRow(sid);
      expect({ authTime: after.authTime.toISOString(), revokedAt: after.revokedAt }).toEqual({ authTime: before.authTime, revokedAt: null });

      const renewed = await server.request("POST", "/auth/reauth", { body: { password: PASSWORD }, token: refreshed.body.accessToken });
      expect(renewed.status).toBe(200);
      expect(decodeJwt(renewed.body.accessToken).auth_time as number).toBeGreaterThan(authTime);
    });
  }

  test("a throw leaves the session row as it was", async () => {
    const signedUp = await signUp();
    const sid = sidOf(signedUp.accessToken);
    clock.advance(60);
    const before = stateOf(await sessionRow(sid));
    const res = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () =>
      server.request("POST", "/auth/reauth", { body: { password: PASSWORD }, token: signedUp.accessToken }),
    );
    expect(res.status).toBe(500);
    expect(stateOf(await sessionRow(sid))).toEqual(before);
  });

  test("a throw spends no one-time factor: the same emailed code works once the hook does", async () => {
    const signedUp = await signUp();
    const mailed = server.mailer.outbox.length;
    expect((await server.request("POST", "/auth/reauth/code", { token: signedUp.accessToken })).status).toBe(202);
    const code = /\b(\d{6})\b/.exec((await server.mailTo(signedUp.user.email, /\d{6}/, mailed)).text)?.[1];
    const res = await whileFailing(signedUp.user.id, FAILURES[0] as Failure, () =>
      server.request("POST", "/auth/reauth", { body: { emailCode: code }, token: signedUp.accessToken }),
    );
    expect(res.status).toBe(500);
    const renewed = await server.request("POST", "/auth/reauth", { body: { emailCode: code }, token: signedUp.accessToken });
    expect(renewed.status).toBe(200);
  });

  test("with the hook working, a wrong password is still 401 INVALID_CREDENTIALS and changes nothing", async () => {
    const signedUp = await signUp();
    const sid = sidOf(signedUp.accessToken);
    const before = stateOf(await sessionRow(sid));
    const res = await server.request("POST", "/auth/reauth", { body: { password: "not the password at all" }, token: signedUp.accessToken });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("INVALID_CREDENTIALS");
    expect(stateOf(await sessionRow(sid))).toEqual(before);
  });
});
