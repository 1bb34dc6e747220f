import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { passkeys } from "../../plugins/mfa/schema";
import { newId } from "../../src/crypto";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: what a guest set up stays with whoever proves to hold it (issue 17, "think past the list"). A guest is
 * free to make and to load with a passkey and TOTP; upgrading it with a victim's address it cannot prove must not
 * hand those to the victim, and upgrading it without its own token upgrades nothing.
 */
const ATTACKER_PASSWORD = "guest-attacker-phrase-7";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

/** A guest with a passkey (a planted row) and TOTP on, as an attacker prepares one. */
async function loadedGuest() {
  const guest = await server.request("POST", "/auth/anonymous");
  expect(guest.status).toBe(201);
  const token = guest.body.accessToken as string;
  const userId = guest.body.user.id as string;
  await server.ctx.db.insert(passkeys).values({ id: newId(), userId, credentialId: `guest-${userId}`, publicKey: "cGs", name: "Attacker key" });
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token });
  expect(setup.status).toBe(200);
  const totp = new TOTP({ secret: Secret.fromBase32(setup.body.secret) });
  expect((await server.request("POST", "/auth/mfa/totp/confirm", { token, body: { code: totp.generate() } })).status).toBe(200);
  return { token, userId };
}

async function signInWithCode(email: string, token?: string) {
  await server.request("POST", "/auth/code/request", { body: { email } });
  const code = /\b(\d{6})\b/.exec((await server.mailTo(email, /\b\d{6}\b/)).text)?.[1];
  return server.request("POST", "/auth/code/verify", { body: { email, code }, token });
}

describe("a guest's credentials never reach someone else", () => {
  test("a guest loaded with a passkey and TOTP that registers a victim's address loses both when the victim proves the mailbox", async () => {
    const { token, userId } = await loadedGuest();
    const victimEmail = uniqueEmail("victim");
    const upgraded = await server.request("POST", "/auth/register", { token, body: { email: victimEmail, password: ATTACKER_PASSWORD } });
    // MFA is on for the guest, so the upgrade answers a challenge for the second factor the attacker holds.
    expect(upgraded.status).toBe(201);
    expect(upgraded.body.mfaRequired).toBe(true);
    expect((await server.ctx.users.findById(userId))?.isAnonymous).toBe(false);

    const victim = await signInWithCode(victimEmail);
    expect(victim.status).toBe(200);
    expect(victim.body.mfaRequired).toBeUndefined();
    expect(victim.body.user).toMatchObject({ id: userId, emailVerified: true, mfaEnabled: false });
    expect(await server.ctx.db.select().from(passkeys).where(eq(passkeys.userId, userId))).toEqual([]);
    expect((await server.request("GET", "/auth/me", { token })).status).toBe(401);
    expect((await server.request("POST", "/auth/login", { body: { email: victimEmail, password: ATTACKER_PASSWORD } })).status).toBe(401);
  });

  test("a code sign-in without the guest's token does not upgrade the guest: the newcomer gets an account of their own", async () => {
    const { userId } = await loadedGuest();
    const newcomer = await signInWithCode(uniqueEmail("newcomer"));
    expect(newcomer.status).toBe(200);
    expect(newcomer.body.user.id).not.toBe(userId);
    expect(newcomer.body.user.mfaEnabled).toBe(false);
    expect((await server.request("GET", "/auth/passkeys", { token: newcomer.body.accessToken })).body).toEqual([]);
    expect((await server.ctx.users.findById(userId))?.isAnonymous).toBe(true);
  });
});
