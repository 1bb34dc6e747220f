import { randomInt } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { newId, sha256 } from "../../src/crypto";
import type { Db } from "../../src/db";
import { recoveryCodes } from "./schema";

export const RECOVERY_CODE_COUNT = 10;
/** RFC 4648 base32, lower-case: no 0/1/8/9, so no O/0 or l/1 confusion when read off paper. */
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** 10 characters of 5 bits each: 50 bits per code. */
const CODE_CHARS = 10;

function newRecoveryCode(): string {
  let raw = "";
  for (let i = 0; i < CODE_CHARS; i++) raw += ALPHABET[randomInt(0, ALPHABET.length)];
  return `${raw.slice(0, 5)}-${raw.slice(5)}`;
}

/** Users type codes with or without the dash, in any case, sometimes with spaces. */
function normalize(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, "");
}

const hashRecoveryCode = (code: string) => sha256(`recovery\0${normalize(code)}`);

/** True when the string has the shape of a recovery code (as opposed to a 6-digit TOTP code). */
export function looksLikeRecoveryCode(code: string): boolean {
  return /^[a-z2-7]{10}$/.test(normalize(code));
}

/** Replaces the user's recovery codes with a fresh set and returns it; only hashes are stored. */
export async function replaceRecoveryCodes(db: Db, userId: string): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await db.insert(recoveryCodes).values(codes.map((code) => ({ id: newId(), userId, codeHash: hashRecoveryCode(code) })));
  return codes;
}

/** Spends a recovery code: of concurrent attempts with the same code, only the one whose UPDATE finds it unused wins. */
export async function spendRecoveryCode(db: Db, userId: string, code: string, now: Date): Promise<boolean> {
  if (!looksLikeRecoveryCode(code)) return false;
  const spent = await db
    .update(recoveryCodes)
    .set({ usedAt: now })
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, hashRecoveryCode(code)), isNull(recoveryCodes.usedAt)))
    .returning({ id: recoveryCodes.id });
  return spent.length === 1;
}
