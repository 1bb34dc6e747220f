import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { users } from "../../src/db/schema";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

// Issue 18: an account deletion racing writes of the same user answered 500 on Postgres (a write for a user deleted
// meanwhile breaks a foreign key, or the two transactions deadlock). Each racing write must get a 4xx, or go through
// before the deletion; none a 500, and the account is gone afterwards (or, when both deletions lost the race to the
// writes that end their sessions, whole, and deletable by its owner).

const PASSWORD = "correct horse battery staple";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ RATE_LIMIT_LOGIN_IP: "10000/60", RATE_LIMIT_SIGNUP_IP: "10000/60", RATE_LIMIT_REFRESH_SESSION: "10000/60" });
});
afterAll(() => server.close());

describe("an account deletion racing writes of the same user", () => {
  test("every racing write answers below 500, and the account is gone (or whole, when both deletions lost the race)", async () => {
    for (let round = 0; round < 4; round++) {
      const email = uniqueEmail("deletion-race");
      const made = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
      expect(made.status).toBe(201);
      const token = made.body.accessToken as string;
      const second = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      const writes: Array<[string, string, unknown?]> = [
        ["PATCH", "/auth/me", { firstName: `Racer ${round}` }],
        ["POST", "/auth/mfa/totp/setup"],
        ["POST", "/auth/passkeys/register/options"],
        ["POST", "/auth/teams", { name: `Team ${round}` }],
        ["POST", "/auth/sessions/revoke-others"],
        ["DELETE", "/auth/sessions"],
        ["POST", "/auth/logout"],
        ["POST", "/auth/password/change", { currentPassword: PASSWORD, newPassword: `${PASSWORD} ${round}` }],
      ];
      const answers = await Promise.all([
        server.request("DELETE", "/auth/me", { token }),
        ...writes.map(([method, path, body]) => server.request(method, path, { token, body })),
        server.request("POST", "/auth/refresh", { body: { refreshToken: made.body.refreshToken } }),
        server.request("POST", "/auth/login", { body: { email, password: PASSWORD } }),
        server.request("DELETE", "/auth/me", { token: second.body.accessToken }),
      ]);
      const labels = ["DELETE /auth/me", ...writes.map(([m, p]) => `${m} ${p}`), "refresh", "login", "DELETE /auth/me (second session)"];
      const failures = answers.map((a, i) => ({ what: labels[i], status: a.status, body: a.text })).filter((a) => a.status >= 500);
      expect(failures).toEqual([]);
      const deletes = [answers[0], answers[answers.length - 1]];
      if (deletes.some((a) => a?.status === 204)) {
        expect(await server.ctx.db.select().from(users).where(eq(users.email, email))).toEqual([]);
        continue;
      }
      // Both deletions can lose the race to the writes that end their sessions (logout, revoking the other sessions,
      // the password change): each is then refused as a revoked session, and the account must be whole, for its
      // owner to sign in again and delete it.
      for (const refused of deletes) expect({ status: refused?.status, code: refused?.body?.code }).toEqual({ status: 401, code: "SESSION_REVOKED" });
      let again = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      if (again.status !== 200) again = await server.request("POST", "/auth/login", { body: { email, password: `${PASSWORD} ${round}` } });
      expect(again.status).toBe(200);
      expect((await server.request("DELETE", "/auth/me", { token: again.body.accessToken })).status).toBe(204);
      expect(await server.ctx.db.select().from(users).where(eq(users.email, email))).toEqual([]);
    }
  }, 60_000);
});
