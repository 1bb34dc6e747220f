import { randomDigits, safeEqual, sha256 } from "./crypto";
import type { KeyValueStore } from "./kv";

export const CODE_TTL_S = 600;
export const MAX_CODE_ATTEMPTS = 5;

type StoredCode = { hash: string; data?: Record<string, unknown> };

const codeKey = (purpose: string, subject: string) => `code:${purpose}:${subject}`;
const attemptsKey = (purpose: string, subject: string) => `code-attempts:${purpose}:${subject}`;
const hashCode = (purpose: string, subject: string, code: string) => sha256(`${purpose}\0${subject}\0${code}`);

/**
 * Six-digit one-time codes in the KV port: stored hashed, 10 minutes, 5 wrong tries per code, single use.
 * Each verification reserves an attempt before comparing, so parallel guesses never evaluate more than the cap.
 * A new code starts with 5 tries of its own: guesses cannot lock an address out beyond its next code, and the
 * callers' request limits (RATE_LIMIT_CODE_EMAIL) bound how many codes, hence guesses, a window allows.
 */
export class OneTimeCodes {
  constructor(private readonly kv: KeyValueStore) {}

  async issue(purpose: string, subject: string, data?: Record<string, unknown>, ttlS = CODE_TTL_S): Promise<string> {
    const code = randomDigits(6);
    const stored: StoredCode = { hash: hashCode(purpose, subject, code), data };
    // Issued in this order in one tick: a guess landing between the two is charged to the new code, never lost.
    await Promise.all([this.kv.del(attemptsKey(purpose, subject)), this.kv.set(codeKey(purpose, subject), JSON.stringify(stored), ttlS)]);
    return code;
  }

  /** Returns the data stored with the code when it is right and unspent; null otherwise. */
  async consume(purpose: string, subject: string, code: string): Promise<{ data?: Record<string, unknown> } | null> {
    if (!/^\d{6}$/.test(code)) return null;
    const attempts = await this.kv.incr(attemptsKey(purpose, subject), CODE_TTL_S);
    const raw = await this.kv.get(codeKey(purpose, subject));
    if (!raw) return null;
    const stored = JSON.parse(raw) as StoredCode;
    const right = safeEqual(stored.hash, hashCode(purpose, subject, code));
    if (attempts.count > MAX_CODE_ATTEMPTS) {
      // Only a wrong try over the cap kills the code: a right one (a double submit) must not spoil the right answer
      // still in flight among the first attempts, which then wins below.
      if (!right) await this.kv.del(codeKey(purpose, subject));
      return null;
    }
    if (!right) return null;
    // Of concurrent right answers, only the one whose get-and-delete still finds this code wins.
    const taken = await this.kv.getDel(codeKey(purpose, subject));
    if (taken !== raw) return null;
    await this.kv.del(attemptsKey(purpose, subject));
    return { data: stored.data };
  }
}
