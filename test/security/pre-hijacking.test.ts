import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { passkeys } from "../../plugins/mfa/schema";
import { oauthAccounts } from "../../plugins/oauth/schema";
import { newId } from "../../src/crypto";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: account pre-hijacking. An attacker registers the victim's address with a password of their own (and
 * maybe a second factor, a passkey or a social link) before the victim signs up. The first proof of the mailbox (a
 * magic code) clears all of it and ends every session made with it, so the attacker is locked out of the account the
 * victim then uses.
 */
const ATTACKER_PASSWORD = "attacker-chosen-phrase-42";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

async function signInWithCode(email: string) {
  await server.request("POST", "/auth/code/request", { body: { email } });
  await Bun.sleep(0);
  const code = /\b(\d{6})\b/.exec(server.mailer.last(email)?.text ?? "")?.[1];
  return server.request("POST", "/auth/code/verify", { body: { email, code } });
}

/** The attacker registers the victim's address with their own password and turns TOTP on for it. */
async function preRegisterWithTotp(email: string) {
  const planted = await server.request("POST", "/auth/register", { body: { email, password: ATTACKER_PASSWORD } });
  const token = planted.body.accessToken;
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token });
  const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
  expect((await server.request("POST", "/auth/mfa/totp/confirm", { token, body: { code: totp.generate() } })).status).toBe(200);
  return { token, userId: planted.body.user.id as string };
}

describe("pre-registered victim address", () => {
  test("a magic code sign-in clears the unverified password and revokes the pre-registrant's sessions", async () => {
    const email = uniqueEmail("victim");
    const planted = await server.request("POST", "/auth/register", { body: { email, password: ATTACKER_PASSWORD } });
    expect(planted.status).toBe(201);
    expect(planted.body.user.emailVerified).toBe(false);

    const victim = await signInWithCode(email);
    expect(victim.status).toBe(200);
    expect(victim.body.user.id).toBe(planted.body.user.id);
    expect(victim.body.user.emailVerified).toBe(true);

    expect((await server.request("GET", "/auth/me", { token: planted.body.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: planted.body.refreshToken } })).status).toBe(401);
    const attackerLogin = await server.request("POST", "/auth/login", { body: { email, password: ATTACKER_PASSWORD } });
    expect(attackerLogin.status).toBe(401);
    expect((await server.request("GET", "/auth/me", { token: victim.body.accessToken })).status).toBe(200);
  });

  test("the pre-registrant's planted TOTP, passkey and social link die too: the victim signs in without their second factor", async () => {
    const email = uniqueEmail("victim-mfa");
    const { token, userId } = await preRegisterWithTotp(email);
    await server.ctx.db.insert(passkeys).values({ id: newId(), userId, credentialId: `attacker-${crypto.randomUUID()}`, publicKey: "cGs", name: "Attacker key" });
    await server.ctx.db.insert(oauthAccounts).values({ id: newId(), userId, provider: "github", providerAccountId: `attacker-${userId}` });

    const victim = await signInWithCode(email);
    expect(victim.status).toBe(200);
    expect(victim.body.mfaRequired).toBeUndefined();
    expect(victim.body.user).toMatchObject({ id: userId, emailVerified: true, mfaEnabled: false });
    expect(await server.ctx.db.select().from(passkeys).where(eq(passkeys.userId, userId))).toEqual([]);
    expect(await server.ctx.db.select().from(oauthAccounts).where(eq(oauthAccounts.userId, userId))).toEqual([]);
    expect((await server.request("GET", "/auth/me", { token })).status).toBe(401);
    // MFA going off is a security event of its own in the audit trail.
    const events = await server.ctx.audit.listForUser(userId, { limit: 20 });
    expect(events.find((e) => e.type === "mfa_disabled")?.data).toEqual({ method: "unverified_account_claimed" });
  });

  test("a password reset of a pre-registered account turns the planted TOTP off, and audits it", async () => {
    const email = uniqueEmail("victim-reset-mfa");
    const { userId } = await preRegisterWithTotp(email);
    await server.request("POST", "/auth/password/forgot", { body: { email } });
    const link = /token=([\w-]+)/.exec((await server.mailTo(email, /token=/)).text)?.[1];
    expect((await server.request("POST", "/auth/password/reset", { body: { token: link, newPassword: "victim-new-phrase-32" } })).status).toBe(204);
    const login = await server.request("POST", "/auth/login", { body: { email, password: "victim-new-phrase-32" } });
    expect(login.body).toMatchObject({ tokenType: "Bearer", mfaEnabled: false });
    const events = await server.ctx.audit.listForUser(userId, { limit: 20 });
    expect(events.find((e) => e.type === "mfa_disabled")?.data).toEqual({ method: "reset" });
  });

  test("a verified account keeps its password and sessions when its owner signs in with a code", async () => {
    const email = uniqueEmail("owner");
    const password = "owner-own-phrase-77";
    const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(password) });
    const session = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
    expect((await signInWithCode(email)).status).toBe(200);
    expect((await server.request("GET", "/auth/me", { token: session.accessToken })).status).toBe(200);
    expect((await server.request("POST", "/auth/login", { body: { email, password } })).status).toBe(200);
  });

  test("a password reset (mailbox proof) also replaces the pre-registrant's password, passkey and social link, and ends their sessions", async () => {
    const email = uniqueEmail("victim-reset");
    const planted = await server.request("POST", "/auth/register", { body: { email, password: ATTACKER_PASSWORD } });
    const userId = planted.body.user.id;
    await server.ctx.db.insert(passkeys).values({ id: newId(), userId, credentialId: `attacker-${crypto.randomUUID()}`, publicKey: "cGs", name: "Attacker key" });
    await server.ctx.db.insert(oauthAccounts).values({ id: newId(), userId, provider: "github", providerAccountId: `attacker-${userId}` });
    await server.request("POST", "/auth/password/forgot", { body: { email } });
    const token = /token=([\w-]+)/.exec((await server.mailTo(email, /token=/)).text)?.[1];
    expect((await server.request("POST", "/auth/password/reset", { body: { token, newPassword: "victim-new-phrase-31" } })).status).toBe(204);
    expect((await server.request("GET", "/auth/me", { token: planted.body.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/login", { body: { email, password: ATTACKER_PASSWORD } })).status).toBe(401);
    expect(await server.ctx.db.select().from(passkeys).where(eq(passkeys.userId, userId))).toEqual([]);
    expect(await server.ctx.db.select().from(oauthAccounts).where(eq(oauthAccounts.userId, userId))).toEqual([]);
  });
});
