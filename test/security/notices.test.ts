import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Secret, TOTP } from "otpauth";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: changes to how an account signs in are mailed to its owner, and the risky ones need more than an
 * access token. A new passkey needs a browser: test/passkeys.test.ts ("register, sign in ...") covers it, and
 * plugins/mfa/passkeys.ts sends the same security notice.
 */
const PASSWORD = "plum-kettle-orbit-93";
const NEW_PASSWORD = "velvet-canyon-lantern-17";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

async function account() {
  const email = uniqueEmail("notice");
  const reg = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
  expect(reg.status).toBe(201);
  return { email, token: reg.body.accessToken as string };
}
const lastMail = async (to: string) => {
  await Bun.sleep(0);
  return server.mailer.last(to);
};
const mailsTo = async (to: string) => {
  await Bun.sleep(0);
  return server.mailer.outbox.filter((m) => m.to === to);
};

async function enableMfa(token: string) {
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token });
  const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token, body: { code: totp.generate() } });
  expect(confirm.status).toBe(200);
  return { totp, recoveryCodes: confirm.body.recoveryCodes as string[] };
}

describe("notice emails", () => {
  test("password change mails the owner", async () => {
    const { email, token } = await account();
    server.mailer.clear();
    expect((await server.request("POST", "/auth/password/change", { token, body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } })).status).toBe(204);
    expect((await lastMail(email))?.subject).toBe("Your password was changed");
  });

  test("password reset mails the owner", async () => {
    const { email } = await account();
    await server.request("POST", "/auth/password/forgot", { body: { email } });
    const token = /token=([\w-]+)/.exec((await server.mailTo(email, /token=/)).text)?.[1];
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: NEW_PASSWORD } })).status).toBe(204);
    expect((await lastMail(email))?.subject).toBe("Your password was changed");
  });

  test("email change mails a code to the new address and a notice to the old one", async () => {
    const { email, token } = await account();
    const newEmail = uniqueEmail("moved");
    expect((await server.request("POST", "/auth/email/change", { token, body: { newEmail, password: PASSWORD } })).status).toBe(202);
    const code = /\b(\d{6})\b/.exec((await lastMail(newEmail))?.text ?? "")?.[1];
    const res = await server.request("POST", "/auth/email/change/confirm", { token, body: { code } });
    expect(res.status).toBe(200);
    expect(res.body.email).toBe(newEmail);
    const notice = await lastMail(email);
    expect(notice?.subject).toBe("Your email address was changed");
  });

  test("MFA on and MFA off each mail the owner", async () => {
    const { email, token } = await account();
    server.mailer.clear();
    const { totp } = await enableMfa(token);
    expect((await mailsTo(email)).map((m) => m.text).join("\n")).toContain("turned on");
    const off = await server.request("POST", "/auth/mfa/disable", { token, body: { code: totp.generate({ timestamp: Date.now() + 30_000 }) } });
    expect(off.status).toBe(204);
    expect((await lastMail(email))?.text).toContain("turned off");
  });
});

describe("risky changes need more than an access token", () => {
  test("email change without the password -> 400, with a wrong one -> 401; no code is mailed", async () => {
    const { token } = await account();
    const newEmail = uniqueEmail("steal");
    const none = await server.request("POST", "/auth/email/change", { token, body: { newEmail } });
    expect(none.status).toBe(400);
    const wrong = await server.request("POST", "/auth/email/change", { token, body: { newEmail, password: "not-the-password-1" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe("INVALID_CREDENTIALS");
    expect(await lastMail(newEmail)).toBeUndefined();
  });

  test("email change confirm needs the code mailed to the new address", async () => {
    const { token } = await account();
    const res = await server.request("POST", "/auth/email/change/confirm", { token, body: { code: "123456" } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_CODE");
  });

  test("MFA disable without a fresh code -> 400; with a wrong one -> 400 INVALID_CODE; MFA stays on", async () => {
    const { token } = await account();
    const { totp } = await enableMfa(token);
    expect((await server.request("POST", "/auth/mfa/disable", { token, body: {} })).status).toBe(400);
    const right = totp.generate();
    const wrong = await server.request("POST", "/auth/mfa/disable", { token, body: { code: right === "000000" ? "111111" : "000000" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");
    expect((await server.request("GET", "/auth/me", { token })).body.mfaEnabled).toBe(true);
  });

  test("MFA disable with a code already used (the one that turned MFA on) is refused", async () => {
    const { token } = await account();
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token });
    const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
    const code = totp.generate();
    expect((await server.request("POST", "/auth/mfa/totp/confirm", { token, body: { code } })).status).toBe(200);
    expect((await server.request("POST", "/auth/mfa/disable", { token, body: { code } })).status).toBe(400);
  });
});
