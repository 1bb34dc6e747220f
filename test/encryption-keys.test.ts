import { afterAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { totpSecrets } from "../plugins/mfa/schema";
import { ConfigError, loadConfig } from "../src/config";
import { decrypt, keyFromSecret } from "../src/crypto";
import type { Database } from "../src/db";
import { createTestServer, isolatedDatabase, type TestServer, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";

// Issue 18: ENCRYPTION_KEYS is a key ring (decrypt with any, encrypt with the first, seal again on use and by
// `keys reencrypt`); turning encryption on later no longer breaks TOTP sign-in.

const OLD = "an-old-deployment-key-of-32-chars-x";
const NEW = "a-new-deployment-key-of-32-chars-yy";
const clock = movableClock();
const open: TestServer[] = [];
let shared: Database;

afterAll(async () => {
  for (const server of open.reverse()) await server.close();
  await shared?.close();
});

function oathtoolCode(secret: string): string {
  clock.advance(30);
  const run = Bun.spawnSync(["oathtool", "--totp", "-b", `--now=@${Math.floor(clock.now().getTime() / 1000)}`, secret]);
  return run.stdout.toString().trim();
}

/** A server on the one database these tests share, with its own key ring. */
async function serverWith(options: Record<string, string>, lines?: string[]) {
  shared ??= await isolatedDatabase();
  const logger = lines
    ? { debug() {}, info() {}, warn() {}, error: (msg: string) => void lines.push(msg) }
    : undefined;
  const server = await createTestServer(options, { clock, database: shared, ...(logger ? { logger } : {}) });
  open.push(server);
  return server;
}

async function enrolled(server: TestServer) {
  const user = await server.ctx.users.create({ email: uniqueEmail("ring"), emailVerified: true });
  const { accessToken } = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: accessToken });
  expect(setup.status).toBe(200);
  const confirm = await server.request("POST", "/auth/mfa/totp/confirm", { token: accessToken, body: { code: oathtoolCode(setup.body.secret) } });
  expect(confirm.status).toBe(200);
  return { userId: user.id, secret: setup.body.secret as string };
}

/** The second step of a sign-in on `server`: 200 when the TOTP code is accepted. */
async function totpSignIn(server: TestServer, userId: string, secret: string) {
  const user = await server.ctx.users.findById(userId);
  if (!user) throw new Error("user vanished");
  const challenge = await server.ctx.signIn(user, { amr: ["pwd"], meta: { ip: null, userAgent: null }, method: "test" });
  if (!("mfaRequired" in challenge)) throw new Error("expected an MFA challenge");
  return server.request("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.mfaToken, code: oathtoolCode(secret) } });
}

async function storedSecret(server: TestServer, userId: string) {
  const [row] = await server.ctx.db.select().from(totpSecrets).where(eq(totpSecrets.userId, userId));
  return row?.secretEncrypted ?? "";
}

describe("ENCRYPTION_KEYS", () => {
  test("encryption turned on later: TOTP sign-in works, and the secret is sealed with the new key on use", async () => {
    const before = await serverWith({});
    const { userId, secret } = await enrolled(before);
    const keyed = await serverWith({ ENCRYPTION_KEYS: NEW });
    expect((await totpSignIn(keyed, userId, secret)).status).toBe(200);
    expect(decrypt(keyFromSecret(NEW, "totp"), await storedSecret(keyed, userId))).toBe(secret);
  });

  test("a secret stored in plain text before sealing existed still signs in, and is sealed on use", async () => {
    const server = await serverWith({ ENCRYPTION_KEY: OLD });
    const { userId, secret } = await enrolled(server);
    await server.ctx.db.update(totpSecrets).set({ secretEncrypted: secret }).where(eq(totpSecrets.userId, userId));
    expect((await totpSignIn(server, userId, secret)).status).toBe(200);
    expect(decrypt(keyFromSecret(OLD, "totp"), await storedSecret(server, userId))).toBe(secret);
  });

  test("rotation: new,old opens both and seals with new; the reseal command moves every row; then old can go", async () => {
    const withOld = await serverWith({ ENCRYPTION_KEY: OLD });
    const first = await enrolled(withOld);
    const second = await enrolled(withOld);
    const ring = await serverWith({ ENCRYPTION_KEYS: `${NEW},${OLD}` });
    expect((await totpSignIn(ring, first.userId, first.secret)).status).toBe(200);
    expect(decrypt(keyFromSecret(NEW, "totp"), await storedSecret(ring, first.userId))).toBe(first.secret);
    // What `auth-server keys reencrypt` runs: the row not used since is sealed again too.
    let resealed = 0;
    for (const reseal of ring.ctx.hooks.reseal) resealed += await reseal();
    expect(resealed).toBeGreaterThanOrEqual(1);
    expect(decrypt(keyFromSecret(NEW, "totp"), await storedSecret(ring, second.userId))).toBe(second.secret);
    const newOnly = await serverWith({ ENCRYPTION_KEYS: NEW });
    expect((await totpSignIn(newOnly, second.userId, second.secret)).status).toBe(200);
  });

  test("a key dropped too early refuses the code (no 500) and logs which setting to fix, never the secret", async () => {
    const withOld = await serverWith({ ENCRYPTION_KEY: OLD });
    const { userId, secret } = await enrolled(withOld);
    const lines: string[] = [];
    const wrong = await serverWith({ ENCRYPTION_KEYS: NEW }, lines);
    const res = await totpSignIn(wrong, userId, secret);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_CODE");
    expect(lines.some((l) => l.includes("ENCRYPTION_KEYS"))).toBe(true);
    expect(lines.join("\n")).not.toContain(secret);
  });

  test("settings: each key 32 characters at least; ENCRYPTION_KEY and ENCRYPTION_KEYS not both", () => {
    const message = (input: Record<string, string>) => {
      try {
        loadConfig(input);
        return "";
      } catch (error) {
        return error instanceof ConfigError ? error.message : String(error);
      }
    };
    expect(loadConfig({ ENCRYPTION_KEYS: `${NEW}, ${OLD}` }).encryptionKeys).toEqual([NEW, OLD]);
    expect(loadConfig({ ENCRYPTION_KEY: OLD }).encryptionKeys).toEqual([OLD]);
    expect(message({ ENCRYPTION_KEYS: `${NEW},short` })).toStartWith("Invalid setting ENCRYPTION_KEYS:");
    expect(message({ ENCRYPTION_KEYS: NEW, ENCRYPTION_KEY: OLD })).toStartWith("Invalid setting ENCRYPTION_KEYS:");
  });
});
