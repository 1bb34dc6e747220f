import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { Secret, TOTP } from "otpauth";
import { passkeys, totpSecrets } from "../../plugins/mfa/schema";
import { oauthAccounts } from "../../plugins/oauth/schema";
import { newId } from "../../src/crypto";
import type { UserRow } from "../../src/db/schema";
import { ConfigError, loadConfig } from "../../src/config";
import { newAdmin } from "../support/admin";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { movableClock } from "../support/users";

/**
 * Checklist: a stolen access token (no password, no second factor) cannot add, change or remove a way into the
 * account. Step-up routes need `auth_time` within REAUTH_MAX_AGE_S; a refresh keeps it; POST /auth/reauth renews it.
 * The thief's token is made old by moving the server's clock past REAUTH_MAX_AGE_S (the token itself still lives).
 */
const PASSWORD = "plum-kettle-orbit-93";
const MAX_AGE_S = 300;
const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ ACCESS_TOKEN_TTL_S: 3600 }, { clock });
});
afterAll(async () => {
  await server.close();
});

type Account = { user: UserRow; email: string; accessToken: string; refreshToken: string };

/** Signs in through the real route, so the token's auth_time is the sign-in's. */
async function signedIn(opts: { password?: boolean } = {}): Promise<Account> {
  const email = uniqueEmail("stepup");
  if (opts.password === false) {
    const user = await server.ctx.users.create({ email, emailVerified: true });
    const tokens = await server.ctx.startSession(user, { amr: ["email"], meta: { ip: null, userAgent: null }, method: "test" });
    return { user, email, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken };
  }
  const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(200);
  return { user, email, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

const authTimeOf = (accessToken: string) => decodeJwt(accessToken).auth_time as number;
const nowS = () => Math.floor(clock.now().getTime() / 1000);
/** Makes every token issued so far too old for step-up (yet still valid: ACCESS_TOKEN_TTL_S is an hour here). */
const letProofGoStale = () => clock.advance(MAX_AGE_S + 1);

const totpCode = (secret: string) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: 30 }).generate({ timestamp: clock.now().getTime() });

/** A six-digit code that is not the current TOTP code, nor one step either side. */
function wrongTotp(secret: string): string {
  const near = new Set([-30_000, 0, 30_000].map((d) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: clock.now().getTime() + d })));
  let n = 314_159;
  while (near.has(String(n))) n++;
  return String(n);
}

/** Turns TOTP on with a fresh proof; answers the secret and the recovery codes. */
async function enableTotp(account: Account): Promise<{ secret: string; recoveryCodes: string[] }> {
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: account.accessToken });
  expect(setup.status).toBe(200);
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.accessToken, body: { code: totpCode(setup.body.secret) } });
  expect(confirm.status).toBe(200);
  clock.advance(30);
  return { secret: setup.body.secret, recoveryCodes: confirm.body.recoveryCodes };
}

/** Every step-up route of API.md, with a body that would otherwise be accepted or at least validated. */
const STEP_UP_ROUTES: Array<{ name: string; method: string; path: (a: Account) => string; body?: unknown }> = [
  { name: "passkey registration options", method: "POST", path: () => "/auth/passkeys/register/options" },
  { name: "passkey registration verify", method: "POST", path: () => "/auth/passkeys/register/verify", body: { response: {} } },
  { name: "passkey deletion", method: "DELETE", path: () => `/auth/passkeys/${newId()}` },
  { name: "provider link", method: "POST", path: () => "/auth/accounts/link/google", body: { redirectTo: "http://localhost:3000/" } },
  { name: "provider unlink", method: "DELETE", path: () => "/auth/accounts/google" },
  { name: "TOTP setup", method: "POST", path: () => "/auth/mfa/totp/setup" },
  { name: "TOTP confirm", method: "POST", path: () => "/auth/mfa/totp/confirm", body: { code: "123456" } },
  { name: "new recovery codes", method: "POST", path: () => "/auth/mfa/recovery-codes", body: { code: "123456" } },
  { name: "account deletion", method: "DELETE", path: () => "/auth/me" },
];

describe("auth_time in access tokens", () => {
  test("a sign-in sets auth_time to now; a refresh keeps it as it was, however much later", async () => {
    const account = await signedIn();
    expect(Math.abs(authTimeOf(account.accessToken) - nowS())).toBeLessThanOrEqual(1);
    const signedInAt = authTimeOf(account.accessToken);
    letProofGoStale();
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: account.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(authTimeOf(refreshed.body.accessToken)).toBe(signedInAt);
    expect(decodeJwt(refreshed.body.accessToken).iat).toBeGreaterThan(signedInAt + MAX_AGE_S);
  });
});

describe("a stolen access token alone cannot add, change or remove a way in", () => {
  for (const route of STEP_UP_ROUTES) {
    test(`${route.name}: 403 REAUTH_REQUIRED once auth_time is older than REAUTH_MAX_AGE_S, and after a refresh`, async () => {
      const account = await signedIn();
      letProofGoStale();
      const stolen = await server.request(route.method, route.path(account), { token: account.accessToken, body: route.body });
      expect(stolen.status).toBe(403);
      expect(stolen.body.code).toBe("REAUTH_REQUIRED");
      const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: account.refreshToken } });
      const again = await server.request(route.method, route.path(account), { token: refreshed.body.accessToken, body: route.body });
      expect(again.status).toBe(403);
      expect(again.body.code).toBe("REAUTH_REQUIRED");
    });
  }

  test("the attacker story: nothing is planted and nothing is lost with an old token", async () => {
    const account = await signedIn({ password: false });
    letProofGoStale();
    for (const route of STEP_UP_ROUTES) await server.request(route.method, route.path(account), { token: account.accessToken, body: route.body });
    const moved = await server.request("POST", "/auth/email/change", { token: account.accessToken, body: { newEmail: uniqueEmail("thief") } });
    expect(moved.status).toBe(403);
    expect(moved.body.code).toBe("REAUTH_REQUIRED");
    const { db } = server.ctx;
    expect(await db.select().from(totpSecrets).where(eq(totpSecrets.userId, account.user.id))).toEqual([]);
    expect(await db.select().from(passkeys).where(eq(passkeys.userId, account.user.id))).toEqual([]);
    expect(await db.select().from(oauthAccounts).where(eq(oauthAccounts.userId, account.user.id))).toEqual([]);
    const me = await server.request("GET", "/auth/me", { token: account.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.email).toBe(account.email);
  });

  test("the check comes right after authentication, before the body is validated", async () => {
    const account = await signedIn();
    const fresh = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.accessToken, body: { code: 7 } });
    expect(fresh.status).toBe(400);
    letProofGoStale();
    for (const body of [{ code: 7 }, {}, { response: "not json" }]) {
      const res = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.accessToken, body });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("REAUTH_REQUIRED");
    }
    expect((await server.request("POST", "/auth/mfa/totp/confirm", { body: { code: 7 } })).status).toBe(401);
  });

  test("a fresh sign-in is proof: the same routes work within REAUTH_MAX_AGE_S", async () => {
    const account = await signedIn();
    clock.advance(MAX_AGE_S - 30);
    expect((await server.request("POST", "/auth/mfa/totp/setup", { token: account.accessToken })).status).toBe(200);
    expect((await server.request("POST", "/auth/passkeys/register/options", { token: account.accessToken })).status).toBe(200);
  });

  test("beyond the list: an old token cannot change the password, turn MFA off or confirm another email without the secret", async () => {
    const account = await signedIn();
    const { secret } = await enableTotp(account);
    letProofGoStale();
    const password = await server.request("POST", "/auth/password/change", {
      token: account.accessToken,
      body: { currentPassword: "a-guessed-password-1", newPassword: "thief-chosen-password-9" },
    });
    expect(password.status).toBe(401);
    const disable = await server.request("POST", "/auth/mfa/disable", { token: account.accessToken, body: { code: wrongTotp(secret) } });
    expect(disable.status).toBe(400);
    const confirm = await server.request("POST", "/auth/email/change/confirm", { token: account.accessToken, body: { code: "123456" } });
    expect(confirm.status).toBe(400);
    const me = await server.request("GET", "/auth/me", { token: account.accessToken });
    expect(me.body).toMatchObject({ email: account.email, mfaEnabled: true });
    expect((await server.request("POST", "/auth/login", { body: { email: account.email, password: PASSWORD } })).body.mfaRequired).toBe(true);
  });

  test("routes that are no way in are not held back by an old token", async () => {
    const account = await signedIn();
    letProofGoStale();
    expect((await server.request("GET", "/auth/me", { token: account.accessToken })).status).toBe(200);
    expect((await server.request("PATCH", "/auth/me", { token: account.accessToken, body: { firstName: "Ada" } })).status).toBe(200);
    expect((await server.request("GET", "/auth/passkeys", { token: account.accessToken })).status).toBe(200);
  });

  test("an impersonation token (act claim) never passes step-up, however fresh, and cannot reauthenticate", async () => {
    const account = await signedIn();
    const admin = await newAdmin(server);
    const issued = await server.request("POST", `/auth/admin/users/${account.user.id}/impersonate`, { token: admin.token });
    expect(issued.status).toBe(200);
    const impersonation: string = issued.body.accessToken;
    expect(decodeJwt(impersonation).act).toEqual({ sub: admin.user.id });
    expect((await server.request("GET", "/auth/me", { token: impersonation })).status).toBe(200);
    for (const route of STEP_UP_ROUTES) {
      const res = await server.request(route.method, route.path(account), { token: impersonation, body: route.body });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("REAUTH_REQUIRED");
    }
    const reauth = await server.request("POST", "/auth/reauth", { token: impersonation, body: { password: PASSWORD } });
    expect(reauth.status).toBe(403);
    expect((await server.request("POST", "/auth/reauth/code", { token: impersonation })).status).toBe(403);
  });
});

describe("routes that take the current password count a right one as proof", () => {
  test("an impersonation token with the user's right password changes neither the password nor the email: 403 REAUTH_REQUIRED", async () => {
    const account = await signedIn();
    const admin = await newAdmin(server);
    const impersonation: string = (await server.request("POST", `/auth/admin/users/${account.user.id}/impersonate`, { token: admin.token })).body.accessToken;
    const password = await server.request("POST", "/auth/password/change", {
      token: impersonation,
      body: { currentPassword: PASSWORD, newPassword: "an admin's choice of password 7" },
    });
    expect(password.status).toBe(403);
    expect(password.body.code).toBe("REAUTH_REQUIRED");
    const email = await server.request("POST", "/auth/email/change", { token: impersonation, body: { newEmail: uniqueEmail("taken-over"), password: PASSWORD } });
    expect(email.status).toBe(403);
    expect(email.body.code).toBe("REAUTH_REQUIRED");
    expect((await server.request("POST", "/auth/login", { body: { email: account.email, password: PASSWORD } })).status).toBe(200);
  });

  test("password change with an old token: the right current password is enough", async () => {
    const account = await signedIn();
    letProofGoStale();
    const res = await server.request("POST", "/auth/password/change", {
      token: account.accessToken,
      body: { currentPassword: PASSWORD, newPassword: "a stale token's new password 8" },
    });
    expect(res.status).toBe(204);
  });

  test("email change with an old token: the right password is enough, a wrong one is 401, none is 400", async () => {
    const account = await signedIn();
    letProofGoStale();
    const wrong = await server.request("POST", "/auth/email/change", { token: account.accessToken, body: { newEmail: uniqueEmail("n"), password: "not-the-password" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe("INVALID_CREDENTIALS");
    const none = await server.request("POST", "/auth/email/change", { token: account.accessToken, body: { newEmail: uniqueEmail("n") } });
    expect(none.status).toBe(400);
    const right = await server.request("POST", "/auth/email/change", { token: account.accessToken, body: { newEmail: uniqueEmail("n"), password: PASSWORD } });
    expect(right.status).toBe(202);
  });

  test("email change of an account without a password needs a recent proof; after POST /auth/reauth with an email code it works", async () => {
    const account = await signedIn({ password: false });
    letProofGoStale();
    const newEmail = uniqueEmail("moved");
    expect((await server.request("POST", "/auth/email/change", { token: account.accessToken, body: { newEmail } })).body.code).toBe("REAUTH_REQUIRED");
    const sent = server.mailer.outbox.length;
    expect((await server.request("POST", "/auth/reauth/code", { token: account.accessToken })).status).toBe(202);
    const mail = await server.mailTo(account.email, /\b\d{6}\b/, sent);
    const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
    const renewed = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { emailCode: code } });
    expect(renewed.status).toBe(200);
    expect((await server.request("POST", "/auth/email/change", { token: renewed.body.accessToken, body: { newEmail } })).status).toBe(202);
  });

  test("password change with an old token and the right current password works", async () => {
    const account = await signedIn();
    letProofGoStale();
    const res = await server.request("POST", "/auth/password/change", {
      token: account.accessToken,
      body: { currentPassword: PASSWORD, newPassword: "velvet-canyon-lantern-17" },
    });
    expect(res.status).toBe(204);
  });
});

describe("POST /auth/reauth", () => {
  test("with the password: a TokenResponse for the same session, a fresh auth_time, and the refresh token rotated", async () => {
    const account = await signedIn();
    const before = decodeJwt(account.accessToken);
    letProofGoStale();
    const res = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { password: PASSWORD } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tokenType: "Bearer", user: { id: account.user.id }, mfaEnabled: false });
    const after = decodeJwt(res.body.accessToken);
    expect(after.sid).toBe(before.sid);
    expect(after.auth_time as number).toBeGreaterThanOrEqual(nowS() - 1);
    expect(res.body.refreshToken).not.toBe(account.refreshToken);
    expect((await server.request("POST", "/auth/passkeys/register/options", { token: res.body.accessToken })).status).toBe(200);
    // The renewed proof survives a refresh of the new refresh token, in the same single session.
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: res.body.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(refreshed.body.accessToken).auth_time).toBe(after.auth_time);
    const sessions = await server.request("GET", "/auth/sessions", { token: refreshed.body.accessToken });
    expect(sessions.body).toHaveLength(1);
    // The refresh token it replaced was rotated as a refresh rotates: presented again, it is a stolen copy.
    const replayed = await server.request("POST", "/auth/refresh", { body: { refreshToken: account.refreshToken } });
    expect(replayed.status).toBe(401);
  });

  test("accepts a form body", async () => {
    const account = await signedIn();
    letProofGoStale();
    expect((await server.request("POST", "/auth/reauth", { token: account.accessToken, form: { password: PASSWORD } })).status).toBe(200);
  });

  test("errors as the contract words them: wrong password 401, wrong codes 400 INVALID_CODE, no factor 400 VALIDATION_ERROR, no token 401", async () => {
    const account = await signedIn();
    letProofGoStale();
    const wrongPassword = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { password: "not-the-password" } });
    expect(wrongPassword.status).toBe(401);
    expect(wrongPassword.body.code).toBe("INVALID_CREDENTIALS");
    for (const body of [{ emailCode: "123456" }, { totpCode: "123456" }, { recoveryCode: "abcde-fghij" }]) {
      const res = await server.request("POST", "/auth/reauth", { token: account.accessToken, body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_CODE");
    }
    const none = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: {} });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe("VALIDATION_ERROR");
    expect((await server.request("POST", "/auth/reauth", { body: { password: PASSWORD } })).status).toBe(401);
    // None of the failures renewed anything.
    expect((await server.request("POST", "/auth/mfa/totp/setup", { token: account.accessToken })).body.code).toBe("REAUTH_REQUIRED");
  });

  test("with MFA on, a password or an email code alone is not proof; a TOTP code or a recovery code is", async () => {
    const account = await signedIn();
    const { secret, recoveryCodes } = await enableTotp(account);
    letProofGoStale();
    const passwordOnly = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { password: PASSWORD } });
    expect(passwordOnly.status).toBe(400);
    const sent = server.mailer.outbox.length;
    await server.request("POST", "/auth/reauth/code", { token: account.accessToken });
    const code = /\b(\d{6})\b/.exec((await server.mailTo(account.email, /\b\d{6}\b/, sent)).text)?.[1];
    const codeOnly = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { emailCode: code } });
    expect(codeOnly.status).toBe(400);
    expect((await server.request("POST", "/auth/mfa/recovery-codes", { token: account.accessToken, body: { code: totpCode(secret) } })).body.code).toBe(
      "REAUTH_REQUIRED",
    );

    const withTotp = await server.request("POST", "/auth/reauth", { token: account.accessToken, body: { password: PASSWORD, totpCode: totpCode(secret) } });
    expect(withTotp.status).toBe(200);
    expect(withTotp.body.mfaEnabled).toBe(true);
    letProofGoStale();
    const recovery = recoveryCodes[0];
    const withRecovery = await server.request("POST", "/auth/reauth", { token: withTotp.body.accessToken, body: { recoveryCode: recovery } });
    expect(withRecovery.status).toBe(200);
    const spent = await server.request("POST", "/auth/reauth", { token: withRecovery.body.accessToken, body: { recoveryCode: recovery } });
    expect(spent.status).toBe(400);
    expect(spent.body.code).toBe("INVALID_CODE");
    expect((await server.request("GET", "/auth/me", { token: withRecovery.body.accessToken })).body.mfaEnabled).toBe(true);
  });

  test("an email code works once, and only for the account it was mailed to", async () => {
    const owner = await signedIn({ password: false });
    const other = await signedIn({ password: false });
    letProofGoStale();
    const sent = server.mailer.outbox.length;
    expect((await server.request("POST", "/auth/reauth/code", { token: owner.accessToken })).status).toBe(202);
    const mail = await server.mailTo(owner.email, /\b\d{6}\b/, sent);
    expect(mail.subject).toMatch(/confirm/i);
    const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
    expect((await server.request("POST", "/auth/reauth", { token: other.accessToken, body: { emailCode: code } })).body.code).toBe("INVALID_CODE");
    expect((await server.request("POST", "/auth/reauth", { token: owner.accessToken, body: { emailCode: code } })).status).toBe(200);
    expect((await server.request("POST", "/auth/reauth", { token: owner.accessToken, body: { emailCode: code } })).body.code).toBe("INVALID_CODE");
  });
});

describe("reauthentication guesses are rate-limited", () => {
  let limited: TestServer;
  const limitedClock = movableClock();
  beforeAll(async () => {
    limited = await createTestServer({ RATE_LIMIT_LOGIN_EMAIL: "3/60", RATE_LIMIT_MFA_USER: "4/900", RATE_LIMIT_CODE_EMAIL: "2/600" }, { clock: limitedClock });
  });
  afterAll(async () => {
    await limited.close();
  });

  async function limitedAccount(): Promise<{ user: UserRow; accessToken: string }> {
    const user = await limited.ctx.users.create({ email: uniqueEmail("rl"), emailVerified: true, passwordHash: await limited.ctx.passwords.hash(PASSWORD) });
    const tokens = await limited.ctx.startSession(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
    return { user, accessToken: tokens.accessToken };
  }

  test("password guesses share the account's login limit: past it even the right password is 429", async () => {
    const { accessToken } = await limitedAccount();
    for (let i = 0; i < 3; i++) {
      expect((await limited.request("POST", "/auth/reauth", { token: accessToken, body: { password: `wrong-guess-${i}` } })).status).toBe(401);
    }
    const blocked = await limited.request("POST", "/auth/reauth", { token: accessToken, body: { password: PASSWORD } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe("RATE_LIMITED");
  });

  test("TOTP guesses count against RATE_LIMIT_MFA_USER: past it even the right code is 429", async () => {
    const { user, accessToken } = await limitedAccount();
    const setup = await limited.request("POST", "/auth/mfa/totp/setup", { token: accessToken });
    const at = () => limitedClock.now().getTime();
    const code = () => new TOTP({ secret: Secret.fromBase32(setup.body.secret), algorithm: "SHA1", digits: 6, period: 30 }).generate({ timestamp: at() });
    expect((await limited.request("POST", "/auth/mfa/totp/confirm", { token: accessToken, body: { code: code() } })).status).toBe(200);
    limitedClock.advance(30);
    for (let i = 0; i < 4; i++) {
      const wrong = String((Number(code()) + 1 + i) % 1_000_000).padStart(6, "0");
      expect((await limited.request("POST", "/auth/reauth", { token: accessToken, body: { totpCode: wrong } })).status).toBe(400);
    }
    const blocked = await limited.request("POST", "/auth/reauth", { token: accessToken, body: { totpCode: code() } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(limited.mailer.outbox.some((m) => m.to === user.email && /two-factor codes/.test(m.text))).toBe(true);
  });

  test("POST /auth/reauth/code mails the owner at most RATE_LIMIT_CODE_EMAIL codes", async () => {
    const { accessToken } = await limitedAccount();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await limited.request("POST", "/auth/reauth/code", { token: accessToken })).status);
    expect(statuses).toEqual([202, 202, 429]);
  });
});

describe("the settings", () => {
  test("REAUTH_MAX_AGE_S defaults to 300 and RATE_LIMIT_MFA_USER to 10/900; a wrong value stops the server naming it", () => {
    const defaults = loadConfig({});
    expect(defaults.REAUTH_MAX_AGE_S).toBe(300);
    expect(defaults.RATE_LIMIT_MFA_USER).toEqual({ count: 10, windowS: 900 });
    for (const [variable, value] of [
      ["REAUTH_MAX_AGE_S", "five minutes"],
      ["REAUTH_MAX_AGE_S", "-1"],
      ["RATE_LIMIT_MFA_USER", "10 per 900"],
    ] as const) {
      let caught: unknown;
      try {
        loadConfig({ [variable]: value });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).variable).toBe(variable);
    }
  });

  test("REAUTH_MAX_AGE_S=60: a proof 61 seconds old no longer passes", async () => {
    const shortClock = movableClock();
    const short = await createTestServer({ REAUTH_MAX_AGE_S: 60 }, { clock: shortClock });
    try {
      const user = await short.ctx.users.create({ email: uniqueEmail("short"), emailVerified: true });
      const { accessToken } = await short.ctx.startSession(user, { amr: ["email"], meta: { ip: null, userAgent: null }, method: "test" });
      shortClock.advance(45);
      expect((await short.request("POST", "/auth/passkeys/register/options", { token: accessToken })).status).toBe(200);
      shortClock.advance(16);
      expect((await short.request("POST", "/auth/passkeys/register/options", { token: accessToken })).body.code).toBe("REAUTH_REQUIRED");
    } finally {
      await short.close();
    }
  });
});
