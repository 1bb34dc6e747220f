import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { sessions } from "../../src/db/schema";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: one-time things are used once, even when presented in parallel; a token of one kind is refused at every
 * other kind's endpoint. WebAuthn challenges need a browser: test/passkeys.test.ts proves them single-use.
 */
const PASSWORD = "plum-kettle-orbit-93";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

const statuses = (rs: TestResponse[]) => rs.map((r) => r.status);
const wins = (rs: TestResponse[], status = 200) => rs.filter((r) => r.status === status).length;
const mailed = async (email: string, pattern: RegExp) => {
  await Bun.sleep(0);
  return pattern.exec(server.mailer.last(email)?.text ?? "")?.[1] ?? "";
};
const resetToken = async (email: string) => {
  await server.request("POST", "/auth/password/forgot", { body: { email } });
  // The reset mail leaves once its token's row is written, after the answer.
  return /token=([\w-]+)/.exec((await server.mailTo(email, /token=/)).text)?.[1] ?? "";
};

async function passwordUser() {
  const email = uniqueEmail("mfa");
  const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  return { email, user, token: tokens.accessToken };
}

/** A user with TOTP on: answers the secret and the recovery codes. */
async function mfaUser() {
  const account = await passwordUser();
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: account.token });
  const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, body: { code: totp.generate() } });
  expect(confirm.status).toBe(200);
  return { ...account, totp, recoveryCodes: confirm.body.recoveryCodes as string[] };
}

const mfaToken = async (email: string) => {
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.body.mfaRequired).toBe(true);
  return res.body.mfaToken as string;
};

describe("used once under races", () => {
  test("refresh token: 20 parallel presentations give one successor, and the session keeps one live chain", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.refreshToken } })),
    );
    const successors = new Set(results.filter((r) => r.status === 200).map((r) => r.body.refreshToken as string));
    expect(successors.size).toBe(1);
    for (const r of results) expect([200, 401]).toContain(r.status);
    // One rotation happened, not twenty: the chain moved on by exactly one generation.
    const [session] = await server.ctx.db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(session!.refreshGen).toBe(1);
    const [successor] = [...successors];
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: successor } })).status).toBe(200);
  });

  test("magic code: 10 parallel presentations of the right code sign in once", async () => {
    const email = uniqueEmail("magic");
    await server.request("POST", "/auth/code/request", { body: { email } });
    const code = await mailed(email, /\b(\d{6})\b/);
    const results = await Promise.all(Array.from({ length: 10 }, () => server.request("POST", "/auth/code/verify", { body: { email, code } })));
    expect(wins(results)).toBe(1);
    expect(statuses(results).filter((s) => s !== 200).every((s) => s === 400)).toBe(true);
  });

  test("reset token: 10 parallel resets, exactly one succeeds", async () => {
    const { email } = await passwordUser();
    const token = await resetToken(email);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => server.request("POST", "/auth/password/reset", { body: { token, newPassword: `fresh-secret-phrase-${i}x` } })),
    );
    expect(wins(results, 204)).toBe(1);
    expect(statuses(results).filter((s) => s !== 204).every((s) => s === 400)).toBe(true);
  });

  test("invitation token: 10 parallel accepts, exactly one account and one membership", async () => {
    const owner = await passwordUser();
    const team = await server.request("POST", "/auth/teams", { token: owner.token, body: { name: "Race team" } });
    const invitee = uniqueEmail("invitee");
    expect((await server.request("POST", "/auth/invitations", { token: owner.token, body: { email: invitee, teamId: team.body.id } })).status).toBe(201);
    const token = await mailed(invitee, /token=([^\s"&]+)/);
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        server.request("POST", "/auth/invitations/accept", { body: { token: decodeURIComponent(token), password: PASSWORD } }),
      ),
    );
    expect(wins(results)).toBe(1);
    for (const r of results) expect(r.status).toBeLessThan(500);
    const members = await server.request("GET", `/auth/teams/${team.body.id}/members`, { token: owner.token });
    expect(members.body.length).toBe(2);
  });

  test("recovery code: one code presented with 5 sign-in challenges in parallel works once", async () => {
    const account = await mfaUser();
    const tokens = await Promise.all(Array.from({ length: 5 }, () => mfaToken(account.email)));
    const code = account.recoveryCodes[0];
    const results = await Promise.all(tokens.map((t) => server.request("POST", "/auth/mfa/recover", { body: { mfaToken: t, recoveryCode: code } })));
    expect(wins(results)).toBe(1);
  });

  test("TOTP step: one code presented with 5 sign-in challenges in parallel works once", async () => {
    const account = await mfaUser();
    const tokens = await Promise.all(Array.from({ length: 5 }, () => mfaToken(account.email)));
    // The next step (one step of skew is allowed): unused, unlike the one that confirmed the setup.
    const code = account.totp.generate({ timestamp: Date.now() + 30_000 });
    const results = await Promise.all(tokens.map((t) => server.request("POST", "/auth/mfa/verify", { body: { mfaToken: t, code } })));
    expect(wins(results)).toBe(1);
    const again = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(account.email), code } });
    expect(again.status).toBe(400);
  });

  test("mfaToken: 4 parallel presentations of one right code with one token sign in once", async () => {
    const account = await mfaUser();
    const token = await mfaToken(account.email);
    // The next step: unused. Four, not five: the token's fifth wrong answer kills it, which would race the winner.
    const code = account.totp.generate({ timestamp: Date.now() + 30_000 });
    const results = await Promise.all(Array.from({ length: 4 }, () => server.request("POST", "/auth/mfa/verify", { body: { mfaToken: token, code } })));
    expect(wins(results)).toBe(1);
    expect((await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: token, code } })).status).toBe(401);
  });
});

describe("a token of one kind is refused at every other kind's endpoint", () => {
  test("refresh token as access token -> 401", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("GET", "/auth/me", { token: tokens.refreshToken });
    expect(res.status).toBe(401);
  });

  test("access token as refresh token -> 401", async () => {
    const { tokens } = await createSignedInUser(server);
    const res = await server.request("POST", "/auth/refresh", { body: { refreshToken: tokens.accessToken.slice(0, 512) } });
    expect([400, 401]).toContain(res.status);
  });

  test("reset token as invitation token -> invalid, and the reset token still works", async () => {
    const { email } = await passwordUser();
    const token = await resetToken(email);
    expect((await server.request("POST", "/auth/invitations/validate", { body: { token } })).body.valid).toBe(false);
    expect((await server.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD } })).status).toBe(400);
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: "another-fresh-phrase-1" } })).status).toBe(204);
  });

  test("invitation token as reset token -> 400 INVALID_RESET_TOKEN", async () => {
    const owner = await passwordUser();
    const team = await server.request("POST", "/auth/teams", { token: owner.token, body: { name: "Kinds" } });
    const invitee = uniqueEmail("kind");
    await server.request("POST", "/auth/invitations", { token: owner.token, body: { email: invitee, teamId: team.body.id } });
    const token = decodeURIComponent(await mailed(invitee, /token=([^\s"&]+)/));
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token } })).body.valid).toBe(false);
    const res = await server.request("POST", "/auth/password/reset", { body: { token, newPassword: "another-fresh-phrase-2" } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_RESET_TOKEN");
  });

  test("mfaToken as refresh token and as access token -> 401", async () => {
    const account = await mfaUser();
    const token = await mfaToken(account.email);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: token } })).status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token })).status).toBe(401);
  });

  test("refresh and access tokens as mfaToken -> 401 MFA_TOKEN_INVALID", async () => {
    const { tokens } = await createSignedInUser(server);
    for (const t of [tokens.refreshToken, tokens.accessToken.slice(0, 256)]) {
      const res = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: t, code: "123456" } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("MFA_TOKEN_INVALID");
    }
  });

  test("access and refresh tokens as reset token or invitation token -> refused", async () => {
    const { tokens } = await createSignedInUser(server);
    for (const token of [tokens.refreshToken, tokens.accessToken.slice(0, 200)]) {
      expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: "another-fresh-phrase-3" } })).status).toBe(400);
      expect((await server.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD } })).status).toBe(400);
    }
  });
});
