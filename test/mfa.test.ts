import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { recoveryCodes, totpSecrets } from "../plugins/mfa/schema";
import type { MfaChallenge } from "../src/context";
import { decrypt, keyFromSecret } from "../src/crypto";
import type { UserRow } from "../src/db/schema";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";

const PASSWORD = "correct horse battery staple";
const RECOVERY_CODE = /^[a-z2-7]{5}-[a-z2-7]{5}$/;

let server: TestServer;
const clock = movableClock();

/** The code an independent implementation (oathtool, RFC 6238) computes for the server's clock. */
function oathtoolCode(secret: string, atMs = clock.now().getTime()): string {
  const run = Bun.spawnSync(["oathtool", "--totp", "-b", `--now=@${Math.floor(atMs / 1000)}`, secret]);
  if (run.exitCode !== 0) throw new Error(`oathtool failed: ${run.stderr.toString()}`);
  return run.stdout.toString().trim();
}

function otpauthCode(secret: string, atMs = clock.now().getTime()): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: 30 }).generate({ timestamp: atMs });
}

/** Moves the server's clock to the next 30-second step, so a fresh code exists (each step's code works once). */
function nextStep() {
  clock.advance(30);
}

function claimsOf(accessToken: string): { amr: string[]; sub: string } {
  const payload = accessToken.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

type Account = { user: UserRow; email: string; token: string };

async function newAccount(): Promise<Account> {
  const email = uniqueEmail("mfa");
  const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  const signedIn = await server.ctx.signIn(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
  if (!("accessToken" in signedIn)) throw new Error("expected tokens for a user without MFA");
  return { user, email, token: signedIn.accessToken };
}

async function enableMfa(account: Account): Promise<{ secret: string; recoveryCodes: string[] }> {
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: account.token });
  expect(setup.status).toBe(200);
  nextStep();
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, body: { code: oathtoolCode(setup.body.secret) } });
  expect(confirm.status).toBe(200);
  return { secret: setup.body.secret, recoveryCodes: confirm.body.recoveryCodes };
}

/** The first factor, done directly, so these tests do not depend on any sign-in plugin. */
async function challengeFor(account: Account): Promise<MfaChallenge> {
  const user = await server.ctx.users.findById(account.user.id);
  if (!user) throw new Error("user vanished");
  const result = await server.ctx.signIn(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
  if (!("mfaRequired" in result)) throw new Error("expected an MFA challenge");
  return result;
}

beforeAll(async () => {
  server = await createTestServer({ WEBAUTHN_RP_NAME: "Acme" }, { clock });
});

afterAll(async () => {
  await server.close();
});

describe("TOTP enrolment", () => {
  test("setup answers a base32 secret, its otpauth URL and a QR code; confirm turns MFA on with 10 recovery codes", async () => {
    const account = await newAccount();
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: account.token });
    expect(setup.status).toBe(200);
    const { secret, otpauthUrl, qrCode } = setup.body;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const url = new URL(otpauthUrl);
    expect(url.protocol).toBe("otpauth:");
    expect(url.host).toBe("totp");
    expect(url.searchParams.get("secret")).toBe(secret);
    expect(url.searchParams.get("algorithm")).toBe("SHA1");
    expect(url.searchParams.get("digits")).toBe("6");
    expect(url.searchParams.get("period")).toBe("30");
    expect(url.searchParams.get("issuer")).toBe("Acme");
    expect(qrCode).toStartWith("data:image/png;base64,");
    expect(Buffer.from(qrCode.split(",")[1], "base64").subarray(1, 4).toString()).toBe("PNG");

    const [stored] = await server.ctx.db.select().from(totpSecrets).where(eq(totpSecrets.userId, account.user.id));
    expect(stored?.secretEncrypted).toBeString();
    expect(stored?.secretEncrypted).not.toContain(secret);
    expect(stored?.confirmed).toBe(false);

    const early = await server.request("GET", "/auth/me", { token: account.token });
    expect(early.body.mfaEnabled).toBe(false);

    nextStep();
    const code = oathtoolCode(secret);
    expect(otpauthCode(secret)).toBe(code);
    const wrong = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, body: { code: code === "000000" ? "111111" : "000000" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");

    const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, form: { code } });
    expect(confirm.status).toBe(200);
    const codes: string[] = confirm.body.recoveryCodes;
    expect(codes).toHaveLength(10);
    for (const c of codes) expect(c).toMatch(RECOVERY_CODE);
    expect(new Set(codes).size).toBe(10);

    const hashes = await server.ctx.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, account.user.id));
    expect(hashes).toHaveLength(10);
    for (const row of hashes) expect(codes.map((c) => c.replace("-", ""))).not.toContain(row.codeHash);
    for (const row of hashes) expect(codes).not.toContain(row.codeHash);

    const me = await server.request("GET", "/auth/me", { token: account.token });
    expect(me.body.mfaEnabled).toBe(true);
    expect(server.mailer.last(account.email)?.text).toContain("turned on");

    const again = await server.request("POST", "/auth/mfa/totp/setup", { token: account.token });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("MFA_ALREADY_ENABLED");
  });

  test("confirm without a setup, setup without a token, and a malformed code are refused", async () => {
    const account = await newAccount();
    const noSetup = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, body: { code: "123456" } });
    expect(noSetup.status).toBe(400);
    expect(noSetup.body.code).toBe("MFA_SETUP_REQUIRED");

    const anonymous = await server.request("POST", "/auth/mfa/totp/setup");
    expect(anonymous.status).toBe(401);

    const missing = await server.request("POST", "/auth/mfa/totp/confirm", { token: account.token, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe("VALIDATION_ERROR");
  });
});

describe("sign-in challenge", () => {
  test("a user with MFA gets a challenge; the right code finishes the sign-in once, with amr pwd+otp", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    const challenge = await challengeFor(account);
    expect(challenge.mfaRequired).toBe(true);
    expect(challenge.methods).toEqual(["totp", "recovery_code"]);
    expect(challenge.mfaToken.length).toBeGreaterThanOrEqual(43);

    nextStep();
    const code = oathtoolCode(secret);
    const wrong = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.mfaToken, code: code === "999999" ? "888888" : "999999" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");

    const ok = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.mfaToken, code } });
    expect(ok.status).toBe(200);
    expect(ok.body.tokenType).toBe("Bearer");
    expect(ok.body.user.id).toBe(account.user.id);
    expect(ok.body.mfaEnabled).toBe(true);
    expect(claimsOf(ok.body.accessToken).amr).toEqual(["pwd", "otp"]);
    const session = await server.request("GET", "/auth/session", { token: ok.body.accessToken });
    expect(session.status).toBe(200);

    nextStep();
    const spent = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.mfaToken, code: otpauthCode(secret) } });
    expect(spent.status).toBe(401);
    expect(spent.body.code).toBe("MFA_TOKEN_INVALID");
  });

  test("a TOTP code is accepted once: a replay with a new mfaToken is 400 INVALID_CODE; the next step's code works (form body)", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    nextStep();
    const code = oathtoolCode(secret);
    const first = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: (await challengeFor(account)).mfaToken, code } });
    expect(first.status).toBe(200);

    const replay = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: (await challengeFor(account)).mfaToken, code } });
    expect(replay.status).toBe(400);
    expect(replay.body.code).toBe("INVALID_CODE");

    // The previous step's code is inside the window but older than the one spent: refused as well.
    const older = oathtoolCode(secret, clock.now().getTime() - 30_000);
    const stale = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: (await challengeFor(account)).mfaToken, code: older } });
    expect(stale.status).toBe(400);

    nextStep();
    const next = await server.request("POST", "/auth/mfa/verify", { form: { mfaToken: (await challengeFor(account)).mfaToken, code: oathtoolCode(secret) } });
    expect(next.status).toBe(200);
  });

  test("concurrent verifies with one code: exactly one session", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    nextStep();
    const code = oathtoolCode(secret);
    const challenges = await Promise.all([challengeFor(account), challengeFor(account), challengeFor(account)]);
    const results = await Promise.all(challenges.map((c) => server.request("POST", "/auth/mfa/verify", { body: { mfaToken: c.mfaToken, code } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
  });

  test("five wrong codes kill the mfaToken: the right code is then 401", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    const { mfaToken } = await challengeFor(account);
    nextStep();
    const code = oathtoolCode(secret);
    const wrongCode = code === "000000" ? "000001" : "000000";
    for (let i = 0; i < 5; i++) {
      const wrong = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken, code: wrongCode } });
      expect(wrong.status).toBe(400);
      expect(wrong.body.code).toBe("INVALID_CODE");
    }
    const dead = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken, code } });
    expect(dead.status).toBe(401);
    expect(dead.body.code).toBe("MFA_TOKEN_INVALID");

    const unknown = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken: "not-a-token", code } });
    expect(unknown.status).toBe(401);
    expect(unknown.body.code).toBe("MFA_TOKEN_INVALID");
  });

  test("parallel wrong guesses are capped at 5 evaluations", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    const { mfaToken } = await challengeFor(account);
    nextStep();
    const code = oathtoolCode(secret);
    const guesses = Array.from({ length: 10 }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, "0"));
    const results = await Promise.all(guesses.map((g) => server.request("POST", "/auth/mfa/verify", { body: { mfaToken, code: g } })));
    expect(results.filter((r) => r.status === 400)).toHaveLength(5);
    expect(results.filter((r) => r.status === 401)).toHaveLength(5);
    const after = await server.request("POST", "/auth/mfa/verify", { body: { mfaToken, code } });
    expect(after.status).toBe(401);
  });
});

describe("recovery codes", () => {
  test("recover spends the code, turns MFA off and signs in", async () => {
    const account = await newAccount();
    const { recoveryCodes: codes } = await enableMfa(account);
    const { mfaToken } = await challengeFor(account);

    const wrong = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken, recoveryCode: "aaaaa-aaaaa" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");

    // Typed in upper case without the dash: still the same code.
    const typed = (codes[3] ?? "").toUpperCase().replace("-", "");
    const ok = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken, recoveryCode: typed } });
    expect(ok.status).toBe(200);
    expect(ok.body.mfaEnabled).toBe(false);
    expect(ok.body.user.mfaEnabled).toBe(false);
    expect(claimsOf(ok.body.accessToken).amr).toEqual(["pwd", "otp"]);
    expect(server.mailer.last(account.email)?.text).toContain("recovery code");

    const rows = await server.ctx.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, account.user.id));
    expect(rows).toHaveLength(0);
    const secrets = await server.ctx.db.select().from(totpSecrets).where(eq(totpSecrets.userId, account.user.id));
    expect(secrets).toHaveLength(0);

    const again = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken, recoveryCode: codes[3] } });
    expect(again.status).toBe(401);

    const user = await server.ctx.users.findById(account.user.id);
    if (!user) throw new Error("user vanished");
    const direct = await server.ctx.signIn(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
    expect("accessToken" in direct).toBe(true);
  });

  test("one recovery code used concurrently: exactly one wins", async () => {
    const account = await newAccount();
    const { recoveryCodes: codes } = await enableMfa(account);
    const challenges = await Promise.all([challengeFor(account), challengeFor(account), challengeFor(account), challengeFor(account)]);
    const results = await Promise.all(
      challenges.map((c) => server.request("POST", "/auth/mfa/recover", { body: { mfaToken: c.mfaToken, recoveryCode: codes[0] } })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    // The losers find either the code spent (400) or, once MFA is off, a token that no longer applies (401).
    for (const r of results.filter((x) => x.status !== 200)) expect([400, 401]).toContain(r.status);
  });

  test("one recovery code raced on one mfaToken: exactly one wins", async () => {
    const account = await newAccount();
    const { recoveryCodes: codes } = await enableMfa(account);
    const { mfaToken } = await challengeFor(account);
    const results = await Promise.all(
      Array.from({ length: 3 }, () => server.request("POST", "/auth/mfa/recover", { body: { mfaToken, recoveryCode: codes[1] } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
  });

  test("regenerate needs a TOTP code; the old set dies and the new one works", async () => {
    const account = await newAccount();
    const { secret, recoveryCodes: oldCodes } = await enableMfa(account);

    const withRecovery = await server.request("POST", "/auth/mfa/recovery-codes", { token: account.token, body: { code: oldCodes[0] } });
    expect(withRecovery.status).toBe(400);
    expect(withRecovery.body.code).toBe("INVALID_CODE");

    nextStep();
    const fresh = await server.request("POST", "/auth/mfa/recovery-codes", { token: account.token, body: { code: oathtoolCode(secret) } });
    expect(fresh.status).toBe(200);
    const newCodes: string[] = fresh.body.recoveryCodes;
    expect(newCodes).toHaveLength(10);
    for (const c of newCodes) expect(oldCodes).not.toContain(c);
    expect(server.mailer.last(account.email)?.text).toContain("recovery codes");

    const old = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken: (await challengeFor(account)).mfaToken, recoveryCode: oldCodes[0] } });
    expect(old.status).toBe(400);
    const ok = await server.request("POST", "/auth/mfa/recover", { body: { mfaToken: (await challengeFor(account)).mfaToken, recoveryCode: newCodes[0] } });
    expect(ok.status).toBe(200);

    const off = await server.request("POST", "/auth/mfa/recovery-codes", { token: account.token, body: { code: "123456" } });
    expect(off.status).toBe(400);
    expect(off.body.code).toBe("MFA_NOT_ENABLED");
  });
});

describe("disable", () => {
  test("with a TOTP code: 204, MFA off, a notice goes out; a second disable is MFA_NOT_ENABLED", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    const wrong = await server.request("POST", "/auth/mfa/disable", { token: account.token, body: { code: "12345" } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe("INVALID_CODE");

    nextStep();
    const off = await server.request("POST", "/auth/mfa/disable", { token: account.token, form: { code: oathtoolCode(secret) } });
    expect(off.status).toBe(204);
    expect(off.text).toBe("");
    const me = await server.request("GET", "/auth/me", { token: account.token });
    expect(me.body.mfaEnabled).toBe(false);
    expect(server.mailer.last(account.email)?.text).toContain("turned off");

    const twice = await server.request("POST", "/auth/mfa/disable", { token: account.token, body: { code: "123456" } });
    expect(twice.status).toBe(400);
    expect(twice.body.code).toBe("MFA_NOT_ENABLED");

    // MFA can be set up again afterwards, with a new secret.
    const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: account.token });
    expect(setup.status).toBe(200);
    expect(setup.body.secret).not.toBe(secret);
  });

  test("with a recovery code: 204", async () => {
    const account = await newAccount();
    const { recoveryCodes: codes } = await enableMfa(account);
    const off = await server.request("POST", "/auth/mfa/disable", { token: account.token, body: { code: codes[9] } });
    expect(off.status).toBe(204);
    const user = await server.ctx.users.findById(account.user.id);
    expect(user?.mfaEnabled).toBe(false);
  });

  test("wrong codes from a signed-in user are capped: the sixth try in a row is 429", async () => {
    const account = await newAccount();
    const { secret } = await enableMfa(account);
    nextStep();
    const code = oathtoolCode(secret);
    const wrongCode = code === "000000" ? "000001" : "000000";
    for (let i = 0; i < 5; i++) {
      const wrong = await server.request("POST", "/auth/mfa/disable", { token: account.token, body: { code: wrongCode } });
      expect(wrong.status).toBe(400);
    }
    const limited = await server.request("POST", "/auth/mfa/disable", { token: account.token, body: { code } });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});

describe("encryption key", () => {
  const DEPLOYMENT_KEY = "a-deployment-secret-of-some-length";

  test("with ENCRYPTION_KEY the secret is sealed with it and still verifies", async () => {
    const keyed = await createTestServer({ ENCRYPTION_KEY: DEPLOYMENT_KEY }, { clock });
    try {
      const user = await keyed.ctx.users.create({ email: uniqueEmail("key"), emailVerified: true });
      const tokens = await keyed.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
      const setup = await keyed.request("POST", "/auth/mfa/totp/setup", { token: tokens.accessToken });
      nextStep();
      const confirm = await keyed.request("POST", "/auth/mfa/totp/confirm", { token: tokens.accessToken, body: { code: oathtoolCode(setup.body.secret) } });
      expect(confirm.status).toBe(200);
      const [row] = await keyed.ctx.db.select().from(totpSecrets).where(eq(totpSecrets.userId, user.id));
      expect(decrypt(keyFromSecret(DEPLOYMENT_KEY, "totp"), row?.secretEncrypted ?? "")).toBe(setup.body.secret);
    } finally {
      await keyed.close();
    }
  });

  test("a purpose's database secret and its sealing key are each its own, in either order", async () => {
    const keyed = await createTestServer({ ENCRYPTION_KEY: DEPLOYMENT_KEY }, { clock });
    try {
      const purpose = `probe-${crypto.randomUUID()}`;
      const fromDb = await keyed.ctx.secrets.get(purpose);
      const sealed = await keyed.ctx.secrets.seal(purpose, "value");
      expect(decrypt(keyFromSecret(DEPLOYMENT_KEY, purpose), sealed)).toBe("value");
      expect(() => decrypt(fromDb, sealed)).toThrow();
      expect(await keyed.ctx.secrets.get(purpose)).toEqual(fromDb);
    } finally {
      await keyed.close();
    }
  });
});
