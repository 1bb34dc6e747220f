import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import type { MfaChallenge } from "../src/context";
import { MemoryStore } from "../src/kv";
import { type MailMessage, MemoryMailer } from "../src/mail";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";

const PLUGINS = { AUTH_PLUGINS: "magic-code,anonymous" };

let server: TestServer;

beforeAll(async () => {
  server = await createTestServer(PLUGINS);
}, 60_000);
afterAll(async () => {
  await server.close();
});

function codeIn(mail: MailMessage | undefined): string {
  const code = /\b(\d{6})\b/.exec(mail?.text ?? "")?.[1];
  if (!code) throw new Error(`no code in mail: ${mail?.text}`);
  return code;
}

async function requestCode(target: TestServer, email: string) {
  const res = await target.request("POST", "/auth/code/request", { body: { email } });
  expect(res.status).toBe(202);
  return codeIn(target.mailer.last(email));
}

/** A code that is not `code`, for wrong guesses. */
const wrongCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

describe("POST /auth/code/request", () => {
  test("with captcha off, a blank captchaToken (a form's empty field) is ignored, as on register and login", async () => {
    const email = uniqueEmail("blank");
    const res = await server.request("POST", "/auth/code/request", { form: { email, captchaToken: "" } });
    expect(res.status).toBe(202);
    expect(codeIn(server.mailer.last(email))).toMatch(/^\d{6}$/);
  });

  test("202 CODE_SENT and a 6-digit code by mail, the same answer for known and unknown emails", async () => {
    const known = uniqueEmail("known");
    await server.ctx.users.create({ email: known, emailVerified: true });
    const unknown = uniqueEmail("unknown");
    const a = await server.request("POST", "/auth/code/request", { body: { email: known } });
    const b = await server.request("POST", "/auth/code/request", { body: { email: unknown } });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(a.body).toEqual({ code: "CODE_SENT", message: expect.any(String) });
    expect(b.text).toBe(a.text);
    expect(server.mailer.last(known)?.subject).toBe("Your sign-in code");
    expect(codeIn(server.mailer.last(known))).toMatch(/^\d{6}$/);
    expect(codeIn(server.mailer.last(unknown))).toMatch(/^\d{6}$/);
  });

  test("accepts a form body, with dashboard as a string, and canonicalises the email", async () => {
    const email = uniqueEmail("form");
    const res = await server.request("POST", "/auth/code/request", { form: { email: `  ${email.toUpperCase()} `, dashboard: "false" } });
    expect(res.status).toBe(202);
    expect(server.mailer.last(email)?.to).toBe(email);
  });

  test("400 VALIDATION_ERROR for a missing or bad email, a list of emails, or a bad dashboard flag", async () => {
    for (const body of [{}, { email: "not-an-email" }, { email: "a@example.com,b@example.com" }, { email: uniqueEmail(), dashboard: "yes" }]) {
      const res = await server.request("POST", "/auth/code/request", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
      expect(res.body.details.length).toBeGreaterThan(0);
    }
  });

  describe("dashboard: true", () => {
    test("401 USER_NOT_FOUND for an unknown email, and no mail", async () => {
      const email = uniqueEmail("nobody");
      const res = await server.request("POST", "/auth/code/request", { body: { email, dashboard: true } });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe("USER_NOT_FOUND");
      expect(server.mailer.last(email)).toBeUndefined();
    });

    test("403 FORBIDDEN for a user without the admin role, and no mail", async () => {
      const email = uniqueEmail("plain");
      await server.ctx.users.create({ email, emailVerified: true });
      const res = await server.request("POST", "/auth/code/request", { form: { email, dashboard: "true" } });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
      expect(server.mailer.last(email)).toBeUndefined();
    });

    test("202 and a code for a user with the stored admin role, who then signs in", async () => {
      const email = uniqueEmail("admin");
      const admin = await server.ctx.users.create({ email, emailVerified: true, roles: ["user", "admin"] });
      const res = await server.request("POST", "/auth/code/request", { body: { email, dashboard: true } });
      expect(res.status).toBe(202);
      const verify = await server.request("POST", "/auth/code/verify", { body: { email, code: codeIn(server.mailer.last(email)) } });
      expect(verify.status).toBe(200);
      expect(verify.body.user.id).toBe(admin.id);
      expect(verify.body.user.roles).toContain("admin");
    });
  });
});

describe("POST /auth/code/verify", () => {
  test("an unknown email becomes a new, verified user signed in with amr email", async () => {
    const email = uniqueEmail("new");
    const code = await requestCode(server, email);
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      user: expect.objectContaining({ email, emailVerified: true, isAnonymous: false, roles: ["user"] }),
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      tokenType: "Bearer",
      expiresIn: 900,
      mfaEnabled: false,
    });
    expect(decodeJwt(res.body.accessToken).amr).toEqual(["email"]);
    const me = await server.request("GET", "/auth/me", { token: res.body.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
    expect((await server.ctx.users.findByEmail(email))?.emailVerified).toBe(true);
  });

  test("an existing unverified user keeps their id and becomes verified; form body and mixed-case email work", async () => {
    const email = uniqueEmail("existing");
    const user = await server.ctx.users.create({ email, emailVerified: false, firstName: "Ada" });
    const code = await requestCode(server, email);
    const res = await server.request("POST", "/auth/code/verify", { form: { email: email.toUpperCase(), code } });
    expect(res.status).toBe(200);
    expect(res.body.user).toEqual(expect.objectContaining({ id: user.id, email, emailVerified: true, firstName: "Ada" }));
  });

  test("400 INVALID_CODE for a wrong code, a code never requested, a malformed code, and a spent code", async () => {
    const email = uniqueEmail("wrong");
    const code = await requestCode(server, email);
    for (const body of [{ email, code: wrongCode(code) }, { email: uniqueEmail("never"), code }, { email, code: "12ab56" }]) {
      const res = await server.request("POST", "/auth/code/verify", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_CODE");
    }
    expect((await server.request("POST", "/auth/code/verify", { body: { email, code } })).status).toBe(200);
    const again = await server.request("POST", "/auth/code/verify", { body: { email, code } });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe("INVALID_CODE");
  });

  test("a wrong code for a known account is audited under that account, as a wrong password is", async () => {
    const email = uniqueEmail("audited");
    const user = await server.ctx.users.create({ email, emailVerified: true });
    const code = await requestCode(server, email);
    expect((await server.request("POST", "/auth/code/verify", { body: { email, code: wrongCode(code) } })).status).toBe(400);
    const [event] = await server.ctx.audit.listForUser(user.id, { limit: 1 });
    expect(event).toMatchObject({ type: "sign_in_failed", userId: user.id, data: { method: "magic-code", reason: "invalid_code" } });
  });

  test("the code dies after 5 wrong tries", async () => {
    const email = uniqueEmail("guess");
    const code = await requestCode(server, email);
    for (let i = 0; i < 5; i++) {
      const res = await server.request("POST", "/auth/code/verify", { body: { email, code: wrongCode(code) } });
      expect(res.body.code).toBe("INVALID_CODE");
    }
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_CODE");
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
  });

  test("a new request replaces the previous code", async () => {
    const email = uniqueEmail("replace");
    const first = await requestCode(server, email);
    const second = await requestCode(server, email);
    if (first !== second) {
      expect((await server.request("POST", "/auth/code/verify", { body: { email, code: first } })).status).toBe(400);
    }
    expect((await server.request("POST", "/auth/code/verify", { body: { email, code: second } })).status).toBe(200);
  });

  test("400 VALIDATION_ERROR without email or code", async () => {
    for (const body of [{ email: uniqueEmail() }, { code: "123456" }, { email: "nope", code: "123456" }]) {
      const res = await server.request("POST", "/auth/code/verify", { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
  });

  test("ten concurrent verifications of one right code give exactly one 200 and one user", async () => {
    const email = uniqueEmail("race");
    const code = await requestCode(server, email);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => server.request("POST", "/auth/code/verify", { body: { email, code } })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 400, 400, 400, 400, 400, 400, 400, 400, 400]);
    for (const r of results.filter((r) => r.status === 400)) expect(r.body.code).toBe("INVALID_CODE");
    const sessions = await server.request("GET", "/auth/sessions", { token: results.find((r) => r.status === 200)?.body.accessToken });
    expect(sessions.body).toHaveLength(1);
  });

  test("a user with MFA on gets the MfaChallenge instead of tokens", async () => {
    const email = uniqueEmail("mfa");
    await server.ctx.users.create({ email, emailVerified: true, mfaEnabled: true });
    const challenge: MfaChallenge = { mfaRequired: true, mfaToken: "challenge-token", methods: ["totp", "recovery_code"] };
    server.ctx.hooks.mfaChallenge = async () => challenge;
    try {
      const code = await requestCode(server, email);
      const res = await server.request("POST", "/auth/code/verify", { body: { email, code } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(challenge);
    } finally {
      server.ctx.hooks.mfaChallenge = undefined;
    }
  });

  test("a signed-in regular user's token is ignored: the code signs in the email's account", async () => {
    const regularEmail = uniqueEmail("regular");
    const regular = await server.request("POST", "/auth/code/verify", {
      body: { email: regularEmail, code: await requestCode(server, regularEmail) },
    });
    const email = uniqueEmail("target");
    const res = await server.request("POST", "/auth/code/verify", {
      body: { email, code: await requestCode(server, email) },
      token: regular.body.accessToken,
    });
    expect(res.status).toBe(200);
    expect(res.body.user.email).toBe(email);
    expect(res.body.user.id).not.toBe(regular.body.user.id);
    expect((await server.ctx.users.findById(regular.body.user.id))?.email).toBe(regularEmail);
  });

  test("401 for an invalid Bearer token", async () => {
    const email = uniqueEmail("badtoken");
    const code = await requestCode(server, email);
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code }, token: "not.a.jwt" });
    expect(res.status).toBe(401);
  });
});

describe("guest upgrade through a code", () => {
  async function newGuest() {
    const res = await server.request("POST", "/auth/anonymous");
    expect(res.status).toBe(201);
    return res.body as { user: { id: string }; accessToken: string; refreshToken: string };
  }

  test("keeps the guest's id, sessions and audit rows; the guest is no longer anonymous", async () => {
    const guest = await newGuest();
    const email = uniqueEmail("upgrade");
    const code = await requestCode(server, email);
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code }, token: guest.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.user).toEqual(expect.objectContaining({ id: guest.user.id, email, emailVerified: true, isAnonymous: false }));

    const sessions = await server.request("GET", "/auth/sessions", { token: res.body.accessToken });
    expect(sessions.body).toHaveLength(2);
    const me = await server.request("GET", "/auth/me", { token: guest.accessToken });
    expect(me.body).toEqual(expect.objectContaining({ id: guest.user.id, email, isAnonymous: false }));
    const refreshed = await server.request("POST", "/auth/refresh", { body: { refreshToken: guest.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.user.id).toBe(guest.user.id);

    const audit = await server.ctx.audit.listForUser(guest.user.id, { limit: 20 });
    expect(audit.map((e) => e.type)).toEqual(expect.arrayContaining(["sign_up", "guest_upgraded", "sign_in"]));
    expect(audit.find((e) => e.type === "sign_up")?.data).toEqual({ method: "anonymous" });
  });

  test("409 EMAIL_TAKEN when the email belongs to another account; both stay intact", async () => {
    const guest = await newGuest();
    const email = uniqueEmail("owner");
    const owner = await server.ctx.users.create({ email, emailVerified: true, firstName: "Owner" });
    const code = await requestCode(server, email);
    const res = await server.request("POST", "/auth/code/verify", { body: { email, code }, token: guest.accessToken });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("EMAIL_TAKEN");

    const guestRow = await server.ctx.users.findById(guest.user.id);
    expect(guestRow).toEqual(expect.objectContaining({ isAnonymous: true, email: null }));
    const me = await server.request("GET", "/auth/me", { token: guest.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.isAnonymous).toBe(true);
    expect(await server.ctx.users.findById(owner.id)).toEqual(owner);

    // The code was spent (documented); a fresh one signs the owner in.
    expect((await server.request("POST", "/auth/code/verify", { body: { email, code } })).status).toBe(400);
    const signIn = await server.request("POST", "/auth/code/verify", { body: { email, code: await requestCode(server, email) } });
    expect(signIn.status).toBe(200);
    expect(signIn.body.user.id).toBe(owner.id);
  });
});

describe("with limits, captcha, ADMIN_EMAILS, a slow mailer and a movable clock", () => {
  let strict: TestServer;
  let captcha: ReturnType<typeof Bun.serve>;
  const clock = movableClock();
  const adminEmail = uniqueEmail("boss");
  const unverifiedAdminEmail = uniqueEmail("unverified-boss");
  /** Records each mail like MemoryMailer, then never finishes, like an SMTP server that hangs. */
  const hangingMailer = new (class extends MemoryMailer {
    override send(message: MailMessage): Promise<void> {
      this.outbox.push(message);
      return new Promise(() => {});
    }
  })();

  beforeAll(async () => {
    captcha = Bun.serve({
      port: 0,
      async fetch(req) {
        const form = new URLSearchParams(await req.text());
        return Response.json({ success: form.get("response") === "good-token" && form.get("secret") === "captcha-secret" });
      },
    });
    strict = await createTestServer(
      {
        ...PLUGINS,
        RATE_LIMIT_CODE_EMAIL: "3/600",
        CAPTCHA_PROVIDER: "turnstile",
        CAPTCHA_SECRET: "captcha-secret",
        CAPTCHA_VERIFY_URL: `http://127.0.0.1:${captcha.port}/siteverify`,
        ADMIN_EMAILS: `${adminEmail.toUpperCase()},${unverifiedAdminEmail}`,
      },
      { clock, mailer: hangingMailer, kv: new MemoryStore(() => clock.now().getTime()) },
    );
  }, 60_000);
  afterAll(async () => {
    await strict.close();
    captcha.stop(true);
  });

  const request = (email: string, extra: Record<string, unknown> = {}) =>
    strict.request("POST", "/auth/code/request", { body: { email, captchaToken: "good-token", ...extra } });
  const lastCode = (email: string) => codeIn(hangingMailer.last(email));

  test("the answer does not wait for the mailer", async () => {
    const email = uniqueEmail("slow");
    const res = await request(email);
    expect(res.status).toBe(202);
    expect(lastCode(email)).toMatch(/^\d{6}$/);
  });

  test("400 CAPTCHA_FAILED without a token, with an empty one or with a bad one", async () => {
    const email = uniqueEmail("bot");
    for (const captchaToken of [undefined, "", "bad-token"]) {
      const res = await strict.request("POST", "/auth/code/request", { body: { email, captchaToken } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("CAPTCHA_FAILED");
    }
    expect(hangingMailer.last(email)).toBeUndefined();
  });

  test("RATE_LIMIT_CODE_EMAIL per email: 429 with Retry-After, other emails unaffected", async () => {
    const email = uniqueEmail("limited");
    for (let i = 0; i < 3; i++) expect((await request(email)).status).toBe(202);
    const limited = await request(email.toUpperCase());
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await request(uniqueEmail("free"))).status).toBe(202);
  });

  test("a code expires after 10 minutes", async () => {
    const email = uniqueEmail("expire");
    expect((await request(email)).status).toBe(202);
    const code = lastCode(email);
    clock.advance(601);
    const res = await strict.request("POST", "/auth/code/verify", { body: { email, code } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_CODE");
  });

  test("ADMIN_EMAILS grants the dashboard; the admin role itself comes only with a proven email", async () => {
    await strict.ctx.users.create({ email: adminEmail, emailVerified: true });
    const res = await request(adminEmail, { dashboard: true });
    expect(res.status).toBe(202);
    const verify = await strict.request("POST", "/auth/code/verify", { body: { email: adminEmail, code: lastCode(adminEmail) } });
    expect(verify.status).toBe(200);
    expect(verify.body.user.roles).toEqual(["user", "admin"]);

    // Registered unverified (verification off): no admin role yet, but the dashboard code goes out, and proves the address.
    const registered = await strict.ctx.users.create({ email: unverifiedAdminEmail, emailVerified: false });
    expect(strict.ctx.users.rolesOf(registered)).toEqual(["user"]);
    expect((await request(unverifiedAdminEmail, { dashboard: true })).status).toBe(202);
    const proven = await strict.request("POST", "/auth/code/verify", { body: { email: unverifiedAdminEmail, code: lastCode(unverifiedAdminEmail) } });
    expect(proven.status).toBe(200);
    expect(proven.body.user).toMatchObject({ id: registered.id, emailVerified: true, roles: ["user", "admin"] });

    const plain = uniqueEmail("plain");
    await strict.ctx.users.create({ email: plain, emailVerified: true });
    const denied = await request(plain, { dashboard: true });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe("FORBIDDEN");
  });
});
