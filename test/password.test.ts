import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { and, eq, isNull } from "drizzle-orm";
import { passwordResetTokens } from "../plugins/password/schema";
import { sha256 } from "../src/crypto";
import { auditEvents, sessions } from "../src/db/schema";
import { createMailer, type MailMessage, MemoryMailer } from "../src/mail";
import { Gate } from "../src/passwords";
import { type ReceivedMail, startSmtpServer } from "./support/smtp";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "./support/server";
import { createSignedInUser, movableClock } from "./support/users";

const PASSWORD = "plum-kettle-orbit-93";
const NEW_PASSWORD = "velvet-canyon-lantern-17";

/** A memory outbox whose sends can be held back, to prove a response does not wait for the mail server. */
class GatedMailer extends MemoryMailer {
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  failing = false;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release?.();
    this.gate = undefined;
  }

  override async send(message: MailMessage): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failing) throw new Error("connection refused by test");
    await super.send(message);
  }
}

const mailer = new GatedMailer();
const clock = movableClock();
const loggedErrors: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
const logger = { debug() {}, info() {}, warn() {}, error: (msg: string, fields?: Record<string, unknown>) => loggedErrors.push({ msg, fields }) };
let server: TestServer;

// Booting PGlite takes seconds on a busy machine; the default hook timeout is too short for it.
const BOOT_TIMEOUT_MS = 30_000;

beforeAll(async () => {
  server = await createTestServer({ AUTH_PLUGINS: "password" }, { mailer, clock, logger });
}, BOOT_TIMEOUT_MS);
afterAll(async () => {
  await server.close();
});

function codeIn(message: { text: string } | undefined): string {
  const code = message?.text.match(/\b\d{6}\b/)?.[0];
  if (!code) throw new Error("no code in the mail");
  return code;
}

function resetTokenIn(message: { text: string } | undefined): string {
  const token = message?.text.match(/\?token=([A-Za-z0-9_-]+)/)?.[1];
  if (!token) throw new Error("no reset link in the mail");
  return token;
}

async function registerUser(s: TestServer, fields: Record<string, string> = {}) {
  const email = fields.email ?? uniqueEmail();
  const res = await s.request("POST", "/auth/register", { body: { email, password: PASSWORD, ...fields } });
  return { email, res };
}

async function auditTypes(userId: string): Promise<string[]> {
  const rows = await server.ctx.db.select().from(auditEvents).where(eq(auditEvents.userId, userId));
  return rows.map((r) => r.type);
}

/** Waits until `check` passes, for effects that land after the response (mail sent in the background). */
/**
 * Asks for a reset link and waits for its mail: the answer does not wait for the token's row (so that known and
 * unknown emails answer alike), and the mail leaves once the row is written.
 */
async function requestReset(email: string): Promise<string> {
  const before = mailer.outbox.length;
  expect((await server.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
  return resetTokenIn(await server.mailTo(email, /\?token=/, before));
}

async function eventually<T>(check: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await Bun.sleep(10);
  }
}

describe("POST /auth/register", () => {
  test("201 TokenResponse signed in with amr pwd; the session works; sign_up is audited", async () => {
    const email = uniqueEmail();
    const res = await server.request("POST", "/auth/register", {
      body: { email: `  ${email.toUpperCase()} `, password: PASSWORD, firstName: "Ada", lastName: "Lovelace", username: `ada_l${Date.now()}` },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ tokenType: "Bearer", expiresIn: 900, mfaEnabled: false });
    expect(res.body.user).toMatchObject({ email, emailVerified: false, firstName: "Ada", lastName: "Lovelace", isAnonymous: false, roles: ["user"] });
    expect(typeof res.body.refreshToken).toBe("string");
    const claims = JSON.parse(Buffer.from(res.body.accessToken.split(".")[1], "base64url").toString());
    expect(claims.amr).toEqual(["pwd"]);
    const me = await server.request("GET", "/auth/me", { token: res.body.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
    expect(await auditTypes(res.body.user.id)).toEqual(expect.arrayContaining(["sign_up", "sign_in"]));
  });

  test("accepts a form body, and ignores fields it does not know (no mass assignment)", async () => {
    const email = uniqueEmail();
    const res = await server.request("POST", "/auth/register", {
      form: { email, password: PASSWORD, confirmPassword: PASSWORD, roles: "admin", emailVerified: "true", isAnonymous: "true" },
    });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ email, roles: ["user"], emailVerified: false, isAnonymous: false });
  });

  test("400 PASSWORD_MISMATCH when confirmPassword differs", async () => {
    const { res } = await registerUser(server, { confirmPassword: `${PASSWORD}x` });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ code: "PASSWORD_MISMATCH", message: expect.any(String) });
  });

  test("confirmPassword is compared as passwords are hashed (NFC): the decomposed form of the same password matches", async () => {
    const password = "caf\u00e9-kettle-orbit-93";
    const { email, res } = await registerUser(server, { password: password.normalize("NFD"), confirmPassword: password });
    expect(res.status).toBe(201);
    const login = await server.request("POST", "/auth/login", { body: { email, password } });
    expect(login.status).toBe(200);
    const change = await server.request("POST", "/auth/password/change", {
      token: login.body.accessToken,
      body: { currentPassword: password, newPassword: "n\u00e9w-kettle-orbit-94", confirmPassword: "n\u00e9w-kettle-orbit-94".normalize("NFD") },
    });
    expect(change.status).toBe(204);
  });

  test("400 WEAK_PASSWORD for short (empty too), long (far past 128 too), common and email-equal passwords", async () => {
    const email = uniqueEmail();
    for (const password of ["", "short1", "x".repeat(129), "long-".repeat(1000), "password123", email]) {
      const res = await server.request("POST", "/auth/register", { body: { email, password } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("WEAK_PASSWORD");
    }
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
  });

  test("400 VALIDATION_ERROR for a missing or malformed email, with details", async () => {
    for (const body of [{ password: PASSWORD }, { email: "not-an-email", password: PASSWORD }, { email: "a@b.co, c@d.co", password: PASSWORD }]) {
      const res = await server.request("POST", "/auth/register", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
      expect(res.body.details[0].path).toBe("email");
    }
  });

  test("409 EMAIL_TAKEN for an email in any case; 409 USERNAME_TAKEN", async () => {
    const username = `user_${Date.now()}`;
    const { email, res } = await registerUser(server, { username });
    expect(res.status).toBe(201);
    const again = await server.request("POST", "/auth/register", { body: { email: email.toUpperCase(), password: PASSWORD } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("EMAIL_TAKEN");
    const sameName = await registerUser(server, { username: username.toUpperCase() });
    expect(sameName.res.status).toBe(409);
    expect(sameName.res.body.code).toBe("USERNAME_TAKEN");
  });

  test("race: two registrations of one email, exactly one 201 and one 409", async () => {
    const email = uniqueEmail("race");
    const [a, b] = await Promise.all([registerUser(server, { email }), registerUser(server, { email })]);
    expect([a.res.status, b.res.status].sort()).toEqual([201, 409]);
    expect([a.res.body.code, b.res.body.code]).toContain("EMAIL_TAKEN");
  });

  test("a guest's Bearer token upgrades the guest in place (same id)", async () => {
    const { user: guest, tokens } = await createSignedInUser(server, { email: null, emailVerified: false, isAnonymous: true });
    const email = uniqueEmail("upgrade");
    const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, token: tokens.accessToken });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ id: guest.id, email, isAnonymous: false });
    const login = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.user.id).toBe(guest.id);
  });

  test("a guest keeps the profile it set on itself; only the fields the registration gives replace it", async () => {
    const { user: guest, tokens } = await createSignedInUser(server, { email: null, emailVerified: false, isAnonymous: true });
    const token = tokens.accessToken;
    const username = `guest_${crypto.randomUUID().slice(0, 8)}`;
    const patched = await server.request("PATCH", "/auth/me", { token, body: { firstName: "Guesty", lastName: "McGuest", username } });
    expect(patched.status).toBe(200);
    const res = await server.request("POST", "/auth/register", { token, body: { email: uniqueEmail("kept"), password: PASSWORD, lastName: "Given" } });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ id: guest.id, isAnonymous: false, firstName: "Guesty", lastName: "Given", username });
  });

  test("a guest upgrading to someone else's email gets 409 EMAIL_TAKEN; both accounts stay intact", async () => {
    const { email, res: owner } = await registerUser(server);
    const { user: guest, tokens } = await createSignedInUser(server, { email: null, emailVerified: false, isAnonymous: true });
    const res = await server.request("POST", "/auth/register", { body: { email, password: NEW_PASSWORD }, token: tokens.accessToken });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("EMAIL_TAKEN");
    expect(await server.ctx.users.findById(guest.id)).toMatchObject({ isAnonymous: true, email: null, passwordHash: null });
    const ownerLogin = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(ownerLogin.status).toBe(200);
    expect(ownerLogin.body.user.id).toBe(owner.body.user.id);
  });

  test("a full user's token does not turn registration into an upgrade: a new account is made", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const res = await server.request("POST", "/auth/register", { body: { email: uniqueEmail(), password: PASSWORD }, token: tokens.accessToken });
    expect(res.status).toBe(201);
    expect(res.body.user.id).not.toBe(user.id);
  });
});

describe("a password change racing a sign-in", () => {
  test("a sign-in that verified the old password while a reset landed gets no session: 401, nothing left live", async () => {
    const { email, res } = await registerUser(server);
    const userId = res.body.user.id as string;
    const real = Bun.password.verify.bind(Bun.password);
    // The reset commits (new hash, every session revoked) while the sign-in's verification of the old one runs.
    const spy = spyOn(Bun.password, "verify").mockImplementation(async (password, hash, algorithm) => {
      const ok = await real(password, hash, algorithm);
      await server.ctx.users.update(userId, { passwordHash: await Bun.password.hash("a-new-password-93") });
      await server.ctx.sessions.revokeAll(userId);
      return ok;
    });
    let login: TestResponse;
    try {
      login = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    } finally {
      spy.mockRestore();
    }
    expect(login.status).toBe(401);
    expect(login.body.code).toBe("INVALID_CREDENTIALS");
    const live = await server.ctx.db.select().from(sessions).where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
    expect(live).toEqual([]);
    expect((await server.request("POST", "/auth/login", { body: { email, password: "a-new-password-93" } })).status).toBe(200);
  });
});

describe("new-sign-in mail", () => {
  const notices = (email: string) => mailer.outbox.filter((m) => m.to === email && m.subject === "New sign-in to your account");
  const loginFrom = (email: string, userAgent: string) =>
    server.request("POST", "/auth/login", { body: { email, password: PASSWORD }, headers: { "user-agent": userAgent } });

  test("goes out for a sign-in from a device the account has not used; not for sign-up, nor for a known device", async () => {
    const email = uniqueEmail("device");
    const reg = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: { "user-agent": "Laptop/1" } });
    expect(reg.status).toBe(201);
    expect((await loginFrom(email, "Laptop/1")).status).toBe(200);
    await Bun.sleep(0);
    expect(notices(email)).toHaveLength(0);

    expect((await loginFrom(email, "Phone/2")).status).toBe(200);
    await Bun.sleep(0);
    const [notice] = notices(email);
    expect(notices(email)).toHaveLength(1);
    expect(notice?.text).toContain("Phone/2");
    expect(notice?.html).toContain("Phone/2");

    expect((await loginFrom(email, "Phone/2")).status).toBe(200);
    expect((await loginFrom(email, "Laptop/1")).status).toBe(200);
    await Bun.sleep(0);
    expect(notices(email)).toHaveLength(1);
  });

  test("a failed sign-in from a new device sends nothing and does not make the device known", async () => {
    const email = uniqueEmail("device-fail");
    await registerUser(server, { email });
    const wrong = await server.request("POST", "/auth/login", { body: { email, password: `${PASSWORD}x` }, headers: { "user-agent": "Thief/1" } });
    expect(wrong.status).toBe(401);
    await Bun.sleep(0);
    expect(notices(email)).toHaveLength(0);
    expect((await loginFrom(email, "Thief/1")).status).toBe(200);
    await Bun.sleep(0);
    expect(notices(email)).toHaveLength(1);
  });
});

describe("POST /auth/login", () => {
  test("200 TokenResponse by email (any case) and by username, also as a form", async () => {
    const username = `login_${Date.now()}`;
    const { email, res: reg } = await registerUser(server, { username });
    const byEmail = await server.request("POST", "/auth/login", { body: { email: ` ${email.toUpperCase()}`, password: PASSWORD } });
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.user.id).toBe(reg.body.user.id);
    expect(byEmail.body.accessToken).toBeString();
    const byName = await server.request("POST", "/auth/login", { form: { username: username.toUpperCase(), password: PASSWORD } });
    expect(byName.status).toBe(200);
    expect(byName.body.user.id).toBe(reg.body.user.id);
  });

  test("401 INVALID_CREDENTIALS with the same body for a wrong password and an unknown user; audited", async () => {
    const { email, res: reg } = await registerUser(server);
    const wrong = await server.request("POST", "/auth/login", { body: { email, password: `${PASSWORD}!` } });
    const unknown = await server.request("POST", "/auth/login", { body: { email: uniqueEmail("nobody"), password: PASSWORD } });
    const unknownName = await server.request("POST", "/auth/login", { body: { username: "no_such_user_x", password: PASSWORD } });
    for (const res of [wrong, unknown, unknownName]) expect(res.status).toBe(401);
    expect(wrong.body).toEqual({ code: "INVALID_CREDENTIALS", message: "Email or password is incorrect" });
    expect(unknown.body).toEqual(wrong.body);
    expect(unknownName.body).toEqual(wrong.body);
    expect(await auditTypes(reg.body.user.id)).toContain("sign_in_failed");
  });

  test("an account without a password (e.g. made by magic code) cannot sign in with any password", async () => {
    const { user } = await createSignedInUser(server);
    const res = await server.request("POST", "/auth/login", { body: { email: user.email, password: PASSWORD } });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("INVALID_CREDENTIALS");
  });

  test("400 VALIDATION_ERROR without email and username, or without a password", async () => {
    for (const body of [{ password: PASSWORD }, { email: uniqueEmail() }]) {
      const res = await server.request("POST", "/auth/login", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
  });

  test("rehashes a password stored with other parameters", async () => {
    const email = uniqueEmail("rehash");
    const oldHash = await Bun.password.hash(PASSWORD, { algorithm: "argon2id", memoryCost: 8192, timeCost: 1 });
    const user = await server.ctx.users.create({ email, passwordHash: oldHash });
    expect(server.ctx.passwords.needsRehash(oldHash)).toBe(true);
    const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(res.status).toBe(200);
    const stored = (await server.ctx.users.findById(user.id))?.passwordHash ?? "";
    expect(stored).not.toBe(oldHash);
    expect(server.ctx.passwords.needsRehash(stored)).toBe(false);
    expect(await Bun.password.verify(PASSWORD, stored)).toBe(true);
  });

  test("a user with MFA gets the MfaChallenge from ctx.signIn instead of tokens", async () => {
    const { email, res: reg } = await registerUser(server);
    await server.ctx.users.update(reg.body.user.id, { mfaEnabled: true });
    const previous = server.ctx.hooks.mfaChallenge;
    server.ctx.hooks.mfaChallenge = async () => ({ mfaRequired: true, mfaToken: "challenge-token", methods: ["totp", "recovery_code"] });
    try {
      const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ mfaRequired: true, mfaToken: "challenge-token", methods: ["totp", "recovery_code"] });
    } finally {
      server.ctx.hooks.mfaChallenge = previous;
    }
  });
});

describe("PASSWORD_HASH_CONCURRENCY", () => {
  /** Counts the argon2 verifications under way at once, calling through to the real one. */
  function countVerifications() {
    const real = Bun.password.verify.bind(Bun.password);
    let inFlight = 0;
    const seen = { calls: 0, max: 0 };
    const spy = spyOn(Bun.password, "verify").mockImplementation(async (password, hash, algorithm) => {
      seen.calls++;
      seen.max = Math.max(seen.max, ++inFlight);
      try {
        return await real(password, hash, algorithm);
      } finally {
        inFlight--;
      }
    });
    return { seen, restore: () => spy.mockRestore() };
  }

  for (const limit of [1, 3]) {
    test(`${limit}: 12 sign-ins at once, right, wrong and unknown, verify at most ${limit} at a time and each gets its answer`, async () => {
      const s = await createTestServer({ AUTH_PLUGINS: "password", PASSWORD_HASH_CONCURRENCY: limit });
      const counter = countVerifications();
      try {
        const { email } = await registerUser(s);
        const attempts = Array.from({ length: 12 }, (_, i) =>
          i % 3 === 0 ? { email, password: PASSWORD } : i % 3 === 1 ? { email, password: "not-the-password-42" } : { email: uniqueEmail(), password: PASSWORD },
        );
        const answers = await Promise.all(attempts.map((body) => s.request("POST", "/auth/login", { body })));
        expect(answers.map((a) => a.status)).toEqual(attempts.map((_, i) => (i % 3 === 0 ? 200 : 401)));
        expect(counter.seen.calls).toBe(12);
        expect(counter.seen.max).toBeLessThanOrEqual(limit);
        // And the gate lets that many run together: with a limit above 1, verifications did overlap.
        expect(counter.seen.max).toBeGreaterThanOrEqual(Math.min(limit, 2));
      } finally {
        counter.restore();
        await s.close();
      }
    }, BOOT_TIMEOUT_MS);
  }

  test("the gate is first come, first served, hands its place on, and frees it when a task fails", async () => {
    const gate = new Gate(2);
    const order: number[] = [];
    const releases: Array<() => void> = [];
    const task = (n: number) => () =>
      new Promise<number>((resolve) => {
        order.push(n);
        releases.push(() => resolve(n));
      });
    const results = [1, 2, 3, 4].map((n) => gate.run(task(n)));
    await Bun.sleep(0);
    expect(order).toEqual([1, 2]);
    releases[1]?.();
    await Bun.sleep(0);
    expect(order).toEqual([1, 2, 3]);
    releases[0]?.();
    await Bun.sleep(0);
    expect(order).toEqual([1, 2, 3, 4]);
    releases[2]?.();
    releases[3]?.();
    expect(await Promise.all(results)).toEqual([1, 2, 3, 4]);
    await expect(gate.run(() => Promise.reject(new Error("argon2 failed")))).rejects.toThrow("argon2 failed");
    await expect(Promise.race([gate.run(async () => "free"), Bun.sleep(100).then(() => "stuck")])).resolves.toBe("free");
  });
});

describe("POST /auth/email/check", () => {
  test("200 {available} for free and taken emails (compared canonically); 400 for a malformed one", async () => {
    const { email } = await registerUser(server);
    const taken = await server.request("POST", "/auth/email/check", { body: { email: email.toUpperCase() } });
    expect(taken).toMatchObject({ status: 200, body: { available: false } });
    const free = await server.request("POST", "/auth/email/check", { form: { email: uniqueEmail() } });
    expect(free).toMatchObject({ status: 200, body: { available: true } });
    const bad = await server.request("POST", "/auth/email/check", { body: { email: "nope" } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("VALIDATION_ERROR");
  });
});

describe("POST /auth/password/change", () => {
  test("204; the current session lives, every other dies; the new password works; notice mailed; audited", async () => {
    const { email, res: reg } = await registerUser(server);
    const other = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    const res = await server.request("POST", "/auth/password/change", {
      token: reg.body.accessToken,
      body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
    });
    expect(res.status).toBe(204);
    expect((await server.request("GET", "/auth/me", { token: reg.body.accessToken })).status).toBe(200);
    expect((await server.request("GET", "/auth/me", { token: other.body.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: other.body.refreshToken } })).status).toBe(401);
    expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(401);
    expect((await server.request("POST", "/auth/login", { body: { email, password: NEW_PASSWORD } })).status).toBe(200);
    expect(mailer.last(email)?.subject).toBe("Your password was changed");
    expect(await auditTypes(reg.body.user.id)).toContain("password_changed");
  });

  test("401 INVALID_CREDENTIALS for a wrong current password; 400 PASSWORD_MISMATCH; 400 WEAK_PASSWORD; 401 without a token", async () => {
    const { res: reg } = await registerUser(server);
    const token = reg.body.accessToken;
    const wrong = await server.request("POST", "/auth/password/change", { token, form: { currentPassword: "nope-nope-nope", newPassword: NEW_PASSWORD } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe("INVALID_CREDENTIALS");
    const mismatch = await server.request("POST", "/auth/password/change", {
      token,
      body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, confirmPassword: PASSWORD },
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.code).toBe("PASSWORD_MISMATCH");
    const weak = await server.request("POST", "/auth/password/change", { token, body: { currentPassword: PASSWORD, newPassword: "12345678" } });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe("WEAK_PASSWORD");
    const anonymous = await server.request("POST", "/auth/password/change", { body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
    expect(anonymous.status).toBe(401);
  });
});

describe("password reset", () => {
  test("forgot answers 202 with the same body for known and unknown emails; only the known one gets a link", async () => {
    const { email } = await registerUser(server);
    const unknownEmail = uniqueEmail("nobody");
    const known = await server.request("POST", "/auth/password/forgot", { body: { email } });
    const unknown = await server.request("POST", "/auth/password/forgot", { form: { email: unknownEmail } });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    const mail = await server.mailTo(email, /token=/);
    expect(mail?.subject).toBe("Reset your password");
    expect(mail?.text).toMatch(/http:\/\/localhost:3000\/reset-password\?token=[A-Za-z0-9_-]{43}\b/);
    expect(mailer.last(unknownEmail)).toBeUndefined();
  });

  test("the answer does not wait for the mail server", async () => {
    const { email } = await registerUser(server);
    mailer.hold();
    try {
      const res = await server.request("POST", "/auth/password/forgot", { body: { email } });
      expect(res.status).toBe(202);
      expect(mailer.last(email)).toBeUndefined();
    } finally {
      mailer.open();
    }
    await eventually(() => mailer.last(email));
  });

  test("a failing mail server does not fail the request; the failure is logged", async () => {
    const { email } = await registerUser(server);
    mailer.failing = true;
    try {
      const res = await server.request("POST", "/auth/password/forgot", { body: { email } });
      expect(res.status).toBe(202);
      const logged = await eventually(() => loggedErrors.find((e) => e.fields?.template === "password-reset"));
      expect(logged.msg).toBe("mail not sent");
      expect(JSON.stringify(logged)).not.toContain("token=");
    } finally {
      mailer.failing = false;
    }
  });

  test("the token is stored only as its hash, for 1 hour", async () => {
    const { email, res: reg } = await registerUser(server);
    const token = await requestReset(email);
    const rows = await server.ctx.db.select().from(passwordResetTokens).where(eq(passwordResetTokens.userId, reg.body.user.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.tokenHash).toBe(sha256(token));
    expect(JSON.stringify(rows)).not.toContain(token);
    const ttl = (rows[0]?.expiresAt.getTime() ?? 0) - (rows[0]?.createdAt.getTime() ?? 0);
    expect(ttl).toBe(3600 * 1000);
  });

  test("validate, reset: 204, token spent, every session revoked, email verified, notice mailed, audited", async () => {
    const { email, res: reg } = await registerUser(server);
    const token = await requestReset(email);
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token } })).body).toEqual({ valid: true });

    const res = await server.request("POST", "/auth/password/reset", { form: { token, newPassword: NEW_PASSWORD } });
    expect(res.status).toBe(204);
    expect((await server.request("GET", "/auth/me", { token: reg.body.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/password/reset/validate", { form: { token } })).body).toEqual({ valid: false });
    const again = await server.request("POST", "/auth/password/reset", { body: { token, newPassword: `${NEW_PASSWORD}x` } });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe("INVALID_RESET_TOKEN");
    const login = await server.request("POST", "/auth/login", { body: { email, password: NEW_PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.body.user.emailVerified).toBe(true);
    expect(mailer.last(email)?.subject).toBe("Your password was changed");
    expect(await auditTypes(reg.body.user.id)).toEqual(expect.arrayContaining(["password_reset_requested", "password_changed"]));
  });

  test("a weak new password is refused before the token is spent", async () => {
    const { email } = await registerUser(server);
    const token = await requestReset(email);
    const weak = await server.request("POST", "/auth/password/reset", { body: { token, newPassword: "password" } });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe("WEAK_PASSWORD");
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token } })).body).toEqual({ valid: true });
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } })).status).toBe(204);
  });

  test("a newer link's use also kills older ones", async () => {
    const { email } = await registerUser(server);
    const first = await requestReset(email);
    const second = await requestReset(email);
    expect((await server.request("POST", "/auth/password/reset", { body: { token: second, newPassword: NEW_PASSWORD } })).status).toBe(204);
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token: first } })).body).toEqual({ valid: false });
  });

  test("race: one token spent twice at once works exactly once", async () => {
    const { email } = await registerUser(server);
    const token = await requestReset(email);
    const results = await Promise.all([
      server.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } }),
      server.request("POST", "/auth/password/reset", { body: { token, newPassword: `${NEW_PASSWORD}-b` } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([204, 400]);
    expect(results.find((r) => r.status === 400)?.body.code).toBe("INVALID_RESET_TOKEN");
  });

  test("an expired token is refused (clock moved past 1 hour)", async () => {
    const { email } = await registerUser(server);
    const token = await requestReset(email);
    clock.advance(3601);
    const res = await server.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_RESET_TOKEN");
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token } })).body).toEqual({ valid: false });
  });

  test("unknown and malformed tokens: {valid:false} and 400 INVALID_RESET_TOKEN; empty token 400 VALIDATION_ERROR", async () => {
    expect((await server.request("POST", "/auth/password/reset/validate", { body: { token: "x".repeat(43) } })).body).toEqual({ valid: false });
    const res = await server.request("POST", "/auth/password/reset", { body: { token: "nope", newPassword: NEW_PASSWORD } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_RESET_TOKEN");
    const empty = await server.request("POST", "/auth/password/reset", { body: { token: "", newPassword: NEW_PASSWORD } });
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe("VALIDATION_ERROR");
  });
});

describe("email change", () => {
  test("code to the new address; confirm moves the account (verified), tells the old address; audited", async () => {
    const { email, res: reg } = await registerUser(server);
    const token = reg.body.accessToken;
    const newEmail = uniqueEmail("moved");
    const res = await server.request("POST", "/auth/email/change", { token, body: { newEmail: newEmail.toUpperCase(), password: PASSWORD } });
    expect(res.status).toBe(202);
    const mail = mailer.last(newEmail);
    expect(mail?.subject).toBe("Confirm your new email address");
    expect(mail?.text).toContain(newEmail);
    const confirm = await server.request("POST", "/auth/email/change/confirm", { token, form: { code: codeIn(mail) } });
    expect(confirm.status).toBe(200);
    expect(confirm.body).toMatchObject({ id: reg.body.user.id, email: newEmail, emailVerified: true });
    expect(mailer.last(email)?.subject).toBe("Your email address was changed");
    expect(mailer.last(email)?.text).toContain(newEmail);
    expect((await server.request("POST", "/auth/login", { body: { email: newEmail, password: PASSWORD } })).status).toBe(200);
    expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(401);
    expect(await auditTypes(reg.body.user.id)).toContain("email_changed");
  });

  test("password required when the account has one (400), wrong one 401 INVALID_CREDENTIALS; 401 without a token", async () => {
    const { res: reg } = await registerUser(server);
    const token = reg.body.accessToken;
    const missing = await server.request("POST", "/auth/email/change", { token, body: { newEmail: uniqueEmail() } });
    expect(missing.status).toBe(400);
    expect(missing.body.details[0].path).toBe("password");
    const wrong = await server.request("POST", "/auth/email/change", { token, body: { newEmail: uniqueEmail(), password: "wrong-password-1" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe("INVALID_CREDENTIALS");
    expect((await server.request("POST", "/auth/email/change", { body: { newEmail: uniqueEmail() } })).status).toBe(401);
  });

  test("an account without a password needs none", async () => {
    const { user, tokens } = await createSignedInUser(server);
    const newEmail = uniqueEmail("nopw");
    expect((await server.request("POST", "/auth/email/change", { token: tokens.accessToken, body: { newEmail } })).status).toBe(202);
    const confirm = await server.request("POST", "/auth/email/change/confirm", { token: tokens.accessToken, body: { code: codeIn(mailer.last(newEmail)) } });
    expect(confirm.body).toMatchObject({ id: user.id, email: newEmail });
  });

  test("a taken new email answers 202 like a free one: its owner gets a notice, no code; taken meanwhile is 409 at confirm", async () => {
    const { email: takenEmail, res: owner } = await registerUser(server);
    const { res: reg } = await registerUser(server);
    const token = reg.body.accessToken;
    const before = mailer.outbox.length;
    const now = await server.request("POST", "/auth/email/change", { token, body: { newEmail: takenEmail, password: PASSWORD } });
    expect(now.status).toBe(202);
    await Bun.sleep(0);
    const mailed = mailer.outbox.slice(before);
    expect(mailed.map((m) => m.to)).toEqual([takenEmail]);
    expect(mailed[0]?.text).toContain("already has an account");
    expect(mailed[0]?.text).not.toMatch(/\b\d{6}\b/);
    // Nothing to confirm: the account keeps its email, and the owner's account is untouched.
    const guess = await server.request("POST", "/auth/email/change/confirm", { token, body: { code: "123456" } });
    expect(guess.body.code).toBe("INVALID_CODE");
    expect((await server.request("GET", "/auth/me", { token })).body.email).toBe(reg.body.user.email);
    expect((await server.request("GET", "/auth/me", { token: owner.body.accessToken })).body.email).toBe(takenEmail);

    const newEmail = uniqueEmail("contested");
    expect((await server.request("POST", "/auth/email/change", { token, body: { newEmail, password: PASSWORD } })).status).toBe(202);
    const code = codeIn(mailer.last(newEmail));
    expect((await registerUser(server, { email: newEmail })).res.status).toBe(201);
    const confirm = await server.request("POST", "/auth/email/change/confirm", { token, body: { code } });
    expect(confirm.status).toBe(409);
    expect(confirm.body.code).toBe("EMAIL_TAKEN");
  });

  test("400 INVALID_CODE for a wrong code, for another user's code, and for a spent code", async () => {
    const a = await registerUser(server);
    const b = await registerUser(server);
    const newEmail = uniqueEmail("bound");
    await server.request("POST", "/auth/email/change", { token: a.res.body.accessToken, body: { newEmail, password: PASSWORD } });
    const code = codeIn(mailer.last(newEmail));
    const wrong = await server.request("POST", "/auth/email/change/confirm", { token: a.res.body.accessToken, body: { code: code === "000000" ? "111111" : "000000" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");
    const stolen = await server.request("POST", "/auth/email/change/confirm", { token: b.res.body.accessToken, body: { code } });
    expect(stolen.body.code).toBe("INVALID_CODE");
    expect((await server.request("POST", "/auth/email/change/confirm", { token: a.res.body.accessToken, body: { code } })).status).toBe(200);
    const spent = await server.request("POST", "/auth/email/change/confirm", { token: a.res.body.accessToken, body: { code } });
    expect(spent.body.code).toBe("INVALID_CODE");
  });

  test("only the latest requested address can be confirmed", async () => {
    const { res: reg } = await registerUser(server);
    const token = reg.body.accessToken;
    const first = uniqueEmail("first");
    const second = uniqueEmail("second");
    await server.request("POST", "/auth/email/change", { token, body: { newEmail: first, password: PASSWORD } });
    const firstCode = codeIn(mailer.last(first));
    await server.request("POST", "/auth/email/change", { token, body: { newEmail: second, password: PASSWORD } });
    const secondCode = codeIn(mailer.last(second));
    if (firstCode !== secondCode) {
      expect((await server.request("POST", "/auth/email/change/confirm", { token, body: { code: firstCode } })).body.code).toBe("INVALID_CODE");
    }
    const confirm = await server.request("POST", "/auth/email/change/confirm", { token, body: { code: secondCode } });
    expect(confirm.body.email).toBe(second);
  });
});

describe("with REQUIRE_EMAIL_VERIFICATION=true", () => {
  let strict: TestServer;
  beforeAll(async () => {
    strict = await createTestServer({ AUTH_PLUGINS: "password", REQUIRE_EMAIL_VERIFICATION: "true" });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await strict.close();
  });

  test("register answers 202 PENDING_CONFIRMATION and mails a code; login 403 until verified; verify signs in", async () => {
    const { email, res } = await registerUser(strict);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ code: "PENDING_CONFIRMATION", message: expect.any(String) });
    const code = codeIn(strict.mailer.last(email));

    const early = await strict.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(early.status).toBe(403);
    expect(early.body.code).toBe("EMAIL_NOT_VERIFIED");
    const wrongPw = await strict.request("POST", "/auth/login", { body: { email, password: `${PASSWORD}x` } });
    expect(wrongPw.status).toBe(401);

    const verified = await strict.request("POST", "/auth/email/verify", { form: { email: email.toUpperCase(), code } });
    expect(verified.status).toBe(200);
    expect(verified.body.user).toMatchObject({ email, emailVerified: true });
    expect(verified.body.accessToken).toBeString();
    expect(JSON.parse(Buffer.from(verified.body.accessToken.split(".")[1], "base64url").toString()).amr).toEqual(["email"]);
    expect((await strict.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(200);
    const again = await strict.request("POST", "/auth/email/verify", { body: { email, code } });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe("INVALID_CODE");
  });

  test("400 INVALID_CODE for a wrong code, an unknown email, a malformed code; dead after 5 wrong tries", async () => {
    const { email } = await registerUser(strict);
    const code = codeIn(strict.mailer.last(email));
    const other = code === "000000" ? "111111" : "000000";
    for (const body of [{ email: uniqueEmail(), code }, { email, code: "12ab56" }]) {
      const res = await strict.request("POST", "/auth/email/verify", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_CODE");
    }
    for (let i = 0; i < 5; i++) expect((await strict.request("POST", "/auth/email/verify", { body: { email, code: other } })).body.code).toBe("INVALID_CODE");
    expect((await strict.request("POST", "/auth/email/verify", { body: { email, code } })).body.code).toBe("INVALID_CODE");
  });

  test("resend: 202 always; a new code only to an existing unverified account", async () => {
    const { email } = await registerUser(strict);
    strict.mailer.clear();
    const unknownEmail = uniqueEmail("nobody");
    const known = await strict.request("POST", "/auth/email/verify/resend", { body: { email } });
    const unknown = await strict.request("POST", "/auth/email/verify/resend", { form: { email: unknownEmail } });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    expect(strict.mailer.last(unknownEmail)).toBeUndefined();
    const code = codeIn(strict.mailer.last(email));
    expect((await strict.request("POST", "/auth/email/verify", { body: { email, code } })).status).toBe(200);

    strict.mailer.clear();
    const verified = await strict.request("POST", "/auth/email/verify/resend", { body: { email } });
    expect(verified.status).toBe(202);
    expect(strict.mailer.outbox).toHaveLength(0);
  });

  test("a guest upgrading is pending too, and keeps its id", async () => {
    const { user: guest, tokens } = await createSignedInUser(strict, { email: null, emailVerified: false, isAnonymous: true });
    const email = uniqueEmail("guest");
    const res = await strict.request("POST", "/auth/register", { body: { email, password: PASSWORD }, token: tokens.accessToken });
    expect(res.status).toBe(202);
    const verified = await strict.request("POST", "/auth/email/verify", { body: { email, code: codeIn(strict.mailer.last(email)) } });
    expect(verified.body.user).toMatchObject({ id: guest.id, email, isAnonymous: false, emailVerified: true });
  });
});

describe("rate limits", () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await createTestServer({
      AUTH_PLUGINS: "password",
      TRUST_PROXY: "true",
      RATE_LIMIT_LOGIN_IP: "4/60",
      RATE_LIMIT_LOGIN_EMAIL: "2/60",
      RATE_LIMIT_CODE_EMAIL: "2/600",
      RATE_LIMIT_EMAIL_CHECK_IP: "2/60",
    });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await limited.close();
  });

  const from = (ip: string) => ({ "x-forwarded-for": ip });

  test("login per account: a changing X-Forwarded-For does not dodge it", async () => {
    const { email } = await registerUser(limited);
    for (const ip of ["198.51.100.1", "198.51.100.2"]) {
      expect((await limited.request("POST", "/auth/login", { body: { email, password: "wrong-guess-1" }, headers: from(ip) })).status).toBe(401);
    }
    const blocked = await limited.request("POST", "/auth/login", { body: { email: email.toUpperCase(), password: PASSWORD }, headers: from("198.51.100.3") });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe("RATE_LIMITED");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  test("login per username counts too", async () => {
    const username = `rl_${Date.now()}`;
    await registerUser(limited, { username });
    for (const ip of ["198.51.100.11", "198.51.100.12"]) {
      await limited.request("POST", "/auth/login", { body: { username, password: "wrong-guess-1" }, headers: from(ip) });
    }
    expect((await limited.request("POST", "/auth/login", { body: { username, password: PASSWORD }, headers: from("198.51.100.13") })).status).toBe(429);
  });

  test("login per IP", async () => {
    const ip = "203.0.113.50";
    for (let i = 0; i < 4; i++) {
      expect((await limited.request("POST", "/auth/login", { body: { email: uniqueEmail(), password: PASSWORD }, headers: from(ip) })).status).toBe(401);
    }
    expect((await limited.request("POST", "/auth/login", { body: { email: uniqueEmail(), password: PASSWORD }, headers: from(ip) })).status).toBe(429);
  });

  test("forgot and resend share the per-email code limit, for known and unknown emails alike", async () => {
    for (const email of [(await registerUser(limited)).email, uniqueEmail("nobody")]) {
      expect((await limited.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
      expect((await limited.request("POST", "/auth/email/verify/resend", { body: { email } })).status).toBe(202);
      const blocked = await limited.request("POST", "/auth/password/forgot", { body: { email }, headers: from("192.0.2.99") });
      expect(blocked.status).toBe(429);
    }
  });

  test("email check per IP", async () => {
    const ip = "203.0.113.77";
    for (let i = 0; i < 2; i++) expect((await limited.request("POST", "/auth/email/check", { body: { email: uniqueEmail() }, headers: from(ip) })).status).toBe(200);
    const blocked = await limited.request("POST", "/auth/email/check", { body: { email: uniqueEmail() }, headers: from(ip) });
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("retry-after")).toBeTruthy();
  });
});

describe("captcha", () => {
  let captchaServer: ReturnType<typeof Bun.serve>;
  let guarded: TestServer;
  const seen: Array<{ secret: string | null; response: string | null }> = [];

  beforeAll(async () => {
    captchaServer = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const form = await req.formData();
        const secret = form.get("secret") as string | null;
        const response = form.get("response") as string | null;
        seen.push({ secret, response });
        return Response.json({ success: secret === "captcha-secret" && response === "human" });
      },
    });
    guarded = await createTestServer({
      AUTH_PLUGINS: "password",
      CAPTCHA_PROVIDER: "turnstile",
      CAPTCHA_SECRET: "captcha-secret",
      CAPTCHA_VERIFY_URL: `http://127.0.0.1:${captchaServer.port}/siteverify`,
    });
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await guarded.close();
    captchaServer.stop(true);
  });

  test("register, login and forgot need a valid captchaToken: 400 CAPTCHA_FAILED without or with a bad one", async () => {
    const email = uniqueEmail("captcha");
    const calls = [
      (captchaToken?: string) => guarded.request("POST", "/auth/register", { body: { email, password: PASSWORD, captchaToken } }),
      (captchaToken?: string) => guarded.request("POST", "/auth/login", { body: { email, password: PASSWORD, captchaToken } }),
      (captchaToken?: string) => guarded.request("POST", "/auth/password/forgot", { form: captchaToken ? { email, captchaToken } : { email } }),
    ];
    const expected = [201, 200, 202];
    for (const [i, call] of calls.entries()) {
      for (const token of [undefined, "robot"]) {
        const res = await call(token);
        expect(res.status).toBe(400);
        expect(res.body.code).toBe("CAPTCHA_FAILED");
      }
      expect((await call("human")).status).toBe(expected[i] ?? 0);
    }
    expect(seen.some((s) => s.secret === "captcha-secret" && s.response === "human")).toBe(true);
  });
});

describe("mail through a real SMTP server", () => {
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let viaSmtp: TestServer;
  let received: ReceivedMail[] = [];

  beforeAll(async () => {
    smtp = await startSmtpServer();
    received = smtp.received;
    const url = smtp.url;
    viaSmtp = await createTestServer(
      { AUTH_PLUGINS: "password", REQUIRE_EMAIL_VERIFICATION: "true", SMTP_URL: url },
      { mailer: createMailer({ smtpUrl: url, from: "Auth <a@b.c>" }) },
    );
  }, BOOT_TIMEOUT_MS);
  afterAll(async () => {
    await viaSmtp.close();
    await viaSmtp.ctx.mailer.close();
    await smtp.close();
  });

  test("register, read the code from the SMTP-received message, verify", async () => {
    const { email, res } = await registerUser(viaSmtp);
    expect(res.status).toBe(202);
    const message = await eventually(() => received.find((m) => m.to.includes(email)), 10_000);
    expect(message.raw).toMatch(/^From: Auth <a@b\.c>/m);
    expect(message.raw).toMatch(/^Subject: Your verification code/m);
    const textPart = message.raw.match(/Content-Type: text\/plain[^\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n([\s\S]*?)\r?\n--/)?.[1] ?? "";
    const code = textPart.match(/\b(\d{6})\b/)?.[1];
    if (!code) throw new Error("no code in the SMTP message");
    const verified = await viaSmtp.request("POST", "/auth/email/verify", { body: { email, code } });
    expect(verified.status).toBe(200);
    expect(verified.body.user).toMatchObject({ email, emailVerified: true });
  });
});
