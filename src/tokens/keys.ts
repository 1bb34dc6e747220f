import { createPrivateKey, type JsonWebKeyInput, type KeyObject } from "node:crypto";
import { and, asc, eq, isNull } from "drizzle-orm";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { keyFromSecret, newId, randomToken } from "../crypto";
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

/**
 * Loads the EdDSA keys every instance shares, making the first one when there is none.
 * The oldest active key signs; all active keys verify, so a new key can be published before it signs.
 */
export async function loadSigningKeys(db: Db): Promise<SigningKey[]> {
  let rows = await activeRows(db, "jwt");
  if (rows.length === 0) {
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const kid = newId();
    await db.insert(serverKeys).values({
      kid,
      purpose: "jwt",
      alg: "EdDSA",
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" },
      privateJwk: await exportJWK(privateKey),
    });
    rows = await activeRows(db, "jwt");
  }
  return Promise.all(
    rows.map(async (row) => {
      const publicJwk = row.publicJwk as JWK;
      return {
        kid: row.kid,
        publicJwk,
        publicKey: (await importJWK(publicJwk, "EdDSA")) as CryptoKey,
        signingKey: createPrivateKey({ key: row.privateJwk, format: "jwk" } as JsonWebKeyInput),
      };
    }),
  );
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

/**
 * The server's secrets by purpose, each loaded (or made) on first use and then kept; a failed load (database down) is
 * not kept, so the next call tries again. A sealing key (one that encrypts data at rest) comes from ENCRYPTION_KEY
 * when it is set, so that it can live outside the database.
 */
export class ServerSecrets {
  private readonly loaded = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly db: Db,
    private readonly encryptionKey?: string,
  ) {}

  /**
   * Loads every secret the database already holds, once at start. A first read later would be a query on the root
   * handle, and the first use of a secret after a start is often inside a transaction (a TOTP code is spent in one):
   * on PGlite's single connection the two would wait for each other forever.
   */
  async init(): Promise<void> {
    const rows = await this.db.select().from(serverKeys).where(and(isNull(serverKeys.retiredAt), eq(serverKeys.alg, "A256GCM"))).orderBy(asc(serverKeys.createdAt), asc(serverKeys.kid));
    for (const row of rows) {
      const slot = `db:${row.purpose}`;
      if (!this.loaded.has(slot)) this.loaded.set(slot, Promise.resolve(Buffer.from((row.privateJwk as { k: string }).k, "base64url")));
    }
  }

  get(purpose: string, opts: { sealing?: boolean } = {}): Promise<Buffer> {
    const fromEncryptionKey = Boolean(opts.sealing && this.encryptionKey);
    // Keyed by where the secret comes from too, so that one purpose asked both ways never answers the wrong key.
    const slot = `${fromEncryptionKey ? "env" : "db"}:${purpose}`;
    let secret = this.loaded.get(slot);
    if (!secret) {
      const loading = fromEncryptionKey ? Promise.resolve(keyFromSecret(this.encryptionKey as string, purpose)) : loadSecret(this.db, purpose);
      loading.catch(() => {
        if (this.loaded.get(slot) === loading) this.loaded.delete(slot);
      });
      this.loaded.set(slot, loading);
      secret = loading;
    }
    return secret;
  }
}
