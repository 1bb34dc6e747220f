import { asc, and, eq, isNull } from "drizzle-orm";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { newId, randomToken } from "../crypto";
import type { Db } from "../db";
import { serverKeys } from "../db/schema";

export type SigningKey = { kid: string; privateKey: CryptoKey; publicKey: CryptoKey; publicJwk: JWK };

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
        privateKey: (await importJWK(row.privateJwk as JWK, "EdDSA")) as CryptoKey,
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
