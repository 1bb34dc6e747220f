import { createPrivateKey, type JsonWebKeyInput, type KeyObject } from "node:crypto";
import { and, asc, eq, isNull } from "drizzle-orm";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { decrypt, encrypt, keyFromSecret, newId, randomToken } from "../crypto";
import type { Db } from "../db";
import { serverKeys } from "../db/schema";

/** `signingKey` signs with node:crypto (src/tokens/access.ts); `publicKey` verifies with jose. */
export type SigningKey = { kid: string; signingKey: KeyObject; publicKey: CryptoKey; publicJwk: JWK };

async function activeRows(db: Db, purpose: string) {
  return db
    .select()
    .from(serverKeys)
    .where(and(eq(serverKeys.purpose, purpose), isNull(serverKeys.retiredAt)))
    .orderBy(asc(serverKeys.createdAt), asc(serverKeys.kid));
}

/** A new EdDSA signing key as its `server_keys` row. */
export async function newSigningKeyRow(createdAt?: Date): Promise<typeof serverKeys.$inferInsert> {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const kid = newId();
  return {
    kid,
    purpose: "jwt",
    alg: "EdDSA",
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" },
    privateJwk: await exportJWK(privateKey),
    createdAt,
  };
}

export async function signingKeyOf(row: typeof serverKeys.$inferSelect): Promise<SigningKey> {
  const publicJwk = row.publicJwk as JWK;
  return {
    kid: row.kid,
    publicJwk,
    publicKey: (await importJWK(publicJwk, "EdDSA")) as CryptoKey,
    signingKey: createPrivateKey({ key: row.privateJwk, format: "jwk" } as JsonWebKeyInput),
  };
}

/** Makes the first EdDSA key every instance shares when there is none (the ring, src/tokens/rotation.ts, loads them). */
export async function ensureSigningKey(db: Db): Promise<void> {
  if ((await activeRows(db, "jwt")).length === 0) await db.insert(serverKeys).values(await newSigningKeyRow());
}

/** A 32-byte secret for a purpose (e.g. sealing TOTP secrets), made once and kept in the database. */
export async function loadSecret(db: Db, purpose: string): Promise<Buffer> {
  let rows = await activeRows(db, purpose);
  if (rows.length === 0) {
    await db
      .insert(serverKeys)
      .values({ kid: `${purpose}-${newId()}`, purpose, alg: "A256GCM", privateJwk: { k: randomToken(32) } })
      .onConflictDoNothing();
    rows = await activeRows(db, purpose);
  }
  const first = rows[0];
  if (!first) throw new Error(`no ${purpose} secret`);
  return Buffer.from((first.privateJwk as { k: string }).k, "base64url");
}

/** What `unseal` answers: the value, and whether a key other than the first opened it (seal it again to move it on). */
export type Unsealed = { value: string; stale: boolean };

/**
 * The server's secrets by purpose, each loaded (or made) on first use and then kept; a failed load (database down) is
 * not kept, so the next call tries again.
 *
 * Sealing (encrypting data at rest) uses a key ring: the keys of ENCRYPTION_KEYS (or the one ENCRYPTION_KEY), first
 * one first, then the purpose's key in the database, which sealed everything while no encryption key was set. `seal`
 * uses the first; `unseal` tries each, so a key added at the front (a rotation, or encryption turned on later) takes
 * over at once while what older keys sealed still opens, until it is sealed again (on use, or `keys reencrypt`).
 */
export class ServerSecrets {
  private readonly loaded = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly db: Db,
    private readonly encryptionKeys: readonly string[] = [],
  ) {}

  /**
   * Loads every secret the database already holds, once at start. A first read later would be a query on the root
   * handle, and the first use of a secret after a start is often inside a transaction (a TOTP code is spent in one):
   * on PGlite's single connection the two would wait for each other forever.
   */
  async init(): Promise<void> {
    const rows = await this.db.select().from(serverKeys).where(and(isNull(serverKeys.retiredAt), eq(serverKeys.alg, "A256GCM"))).orderBy(asc(serverKeys.createdAt), asc(serverKeys.kid));
    for (const row of rows) {
      const slot = row.purpose;
      if (!this.loaded.has(slot)) this.loaded.set(slot, Promise.resolve(Buffer.from((row.privateJwk as { k: string }).k, "base64url")));
    }
  }

  /** The purpose's secret kept in the database (made on first use): MAC keys, and the last key of every sealing ring. */
  get(purpose: string): Promise<Buffer> {
    let secret = this.loaded.get(purpose);
    if (!secret) {
      const loading = loadSecret(this.db, purpose);
      loading.catch(() => {
        if (this.loaded.get(purpose) === loading) this.loaded.delete(purpose);
      });
      this.loaded.set(purpose, loading);
      secret = loading;
    }
    return secret;
  }

  /** The sealing keys of a purpose, the one that seals first. */
  private async ring(purpose: string): Promise<Buffer[]> {
    const fromSettings = this.encryptionKeys.map((key) => keyFromSecret(key, purpose));
    if (fromSettings.length === 0) return [await this.get(purpose)];
    // With encryption keys set, the database's key only opens what it sealed before them; none is made for it.
    const before = await this.loaded.get(purpose)?.catch(() => undefined);
    return before ? [...fromSettings, before] : fromSettings;
  }

  async seal(purpose: string, plaintext: string): Promise<string> {
    const [first] = await this.ring(purpose);
    return encrypt(first as Buffer, plaintext);
  }

  /** The value sealed for `purpose`, or null when no key of the ring opens it (a key was dropped too early). */
  async unseal(purpose: string, sealed: string): Promise<Unsealed | null> {
    const ring = await this.ring(purpose);
    for (const [index, key] of ring.entries()) {
      try {
        return { value: decrypt(key, sealed), stale: index > 0 };
      } catch {}
    }
    return null;
  }
}
