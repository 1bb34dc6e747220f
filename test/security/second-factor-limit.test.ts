import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Secret, TOTP } from "otpauth";
import type { UserRow } from "../../src/db/schema";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { movableClock } from "../support/users";

/**
 * Checklist: second-factor guesses (TOTP, recovery codes) are capped per account across all its mfaTokens
 * (RATE_LIMIT_MFA_USER, default 10/900), not only per mfaToken (5 each): whoever has the password could otherwise ask
 * for token after token, about 25 guesses a minute. The owner is mailed when the cap is hit.
 */
const PASSWORD = "plum-kettle-orbit-93";
const NOTICE = /wrong two-factor codes/;
const clock = movableClock();
let server: TestServer;

beforeAll(async () => {
  // RATE_LIMIT_MFA_USER is left at its default, which this file proves.
  server = await createTestServer({}, { clock });
});
afterAll(async () => {
  await server.close();
});

type Victim = { user: UserRow; email: string; secret: string; recoveryCodes: string[] };

async function victimWithMfa(): Promise<Victim> {
  const email = uniqueEmail("mfa-victim");
  const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const { accessToken } = await server.ctx.startSession(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: accessToken });
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: accessToken, body: { code: totpCode(setup.body.secret) } });
  expect(confirm.status).toBe(200);
  clock.advance(30);
  return { user, email, secret: setup.body.secret, recoveryCodes: confirm.body.recoveryCodes };
}

function totpCode(secret: string): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: 30 }).generate({ timestamp: clock.now().getTime() });
}

/** A code that is certainly not the current one (nor one step either side). */
function wrongCode(secret: string, i: number): string {
  const taken = new Set([-30, 0, 30].map((d) => new TOTP({ secret: Secret.fromBase32(secret), period: 30 }).generate({ timestamp: clock.now().getTime() + d * 1000 })));
  let n = 100_000 + i * 7919;
  while (taken.has(String(n))) n++;
  return String(n);
}

/** A fresh mfaToken from the real password sign-in: what an attacker who has the password asks for again and again. */
async function mfaToken(email: string): Promise<string> {
  const res = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
  expect(res.body.mfaRequired).toBe(true);
  return res.body.mfaToken;
}

const noticesTo = (email: string) => server.mailer.outbox.filter((m) => m.to === email && NOTICE.test(m.text)).length;

describe("RATE_LIMIT_MFA_USER", () => {
  test("ten wrong TOTP codes over three mfaTokens: the eleventh guess, even the right code on a new token, is 429", async () => {
    const victim = await victimWithMfa();
    let guesses = 0;
    for (let t = 0; t < 3 && guesses < 10; t++) {
      const token = await mfaToken(victim.email);
      for (let i = 0; i < 4 && guesses < 10; i++, guesses++) {
        const res = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: token, code: wrongCode(victim.secret, guesses) } });
        expect(res.status).toBe(400);
        expect(res.body.code).toBe("INVALID_CODE");
      }
    }
    const blocked = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: totpCode(victim.secret) } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe("RATE_LIMITED");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    const recover = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken: await mfaToken(victim.email), recoveryCode: victim.recoveryCodes[0] } });
    expect(recover.status).toBe(429);
  });

  test("the owner is mailed once when the cap is hit, and not before", async () => {
    const victim = await victimWithMfa();
    for (let i = 0; i < 9; i++) {
      await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: wrongCode(victim.secret, i) } });
    }
    expect(noticesTo(victim.email)).toBe(0);
    await server.request("POST", "/auth/mfa/recover", { body: { mfaToken: await mfaToken(victim.email), recoveryCode: "aaaaa-bbbbb" } });
    const deadline = Date.now() + 3000;
    while (noticesTo(victim.email) === 0 && Date.now() < deadline) await Bun.sleep(10);
    expect(noticesTo(victim.email)).toBe(1);
    for (let i = 0; i < 3; i++) {
      const res = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: wrongCode(victim.secret, 20 + i) } });
      expect(res.status).toBe(429);
    }
    await Bun.sleep(50);
    expect(noticesTo(victim.email)).toBe(1);
  });

  test("parallel guesses on many tokens are all counted: at most ten are evaluated", async () => {
    const victim = await victimWithMfa();
    const tokens = await Promise.all(Array.from({ length: 4 }, () => mfaToken(victim.email)));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.request("POST", "/auth/mfa/verify", { body: { mfaToken: tokens[i % 4], code: wrongCode(victim.secret, i) } }),
      ),
    );
    const evaluated = results.filter((r) => r.status === 400).length;
    expect(evaluated).toBeLessThanOrEqual(10);
    expect(results.filter((r) => r.status === 429).length).toBeGreaterThan(0);
  });

  test("the cap is per account: another account's guesses are not held back", async () => {
    const victim = await victimWithMfa();
    const bystander = await victimWithMfa();
    for (let i = 0; i < 11; i++) {
      await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: wrongCode(victim.secret, i) } });
    }
    const other = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(bystander.email), code: totpCode(bystander.secret) } });
    expect(other.status).toBe(200);
  });

  test("a right code clears the count: the owner who mistypes a few times is not locked out later", async () => {
    const victim = await victimWithMfa();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) {
        await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: wrongCode(victim.secret, round * 10 + i) } });
      }
      const ok = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: await mfaToken(victim.email), code: totpCode(victim.secret) } });
      expect(ok.status).toBe(200);
      clock.advance(30);
    }
  });
});
