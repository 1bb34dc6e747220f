import type { Config } from "./config";
import { coreError } from "./errors";
import commonPasswordsFile from "./data/common-passwords.txt" with { type: "file" };

/**
 * The common-password list (SecLists' "10 million passwords" top entries: the 10,000 most common, plus every
 * 8+ character one of the top 300,000), loaded once into a Set on first use.
 */
let commonPasswords: Set<string> | undefined;
async function loadCommonPasswords(): Promise<Set<string>> {
  commonPasswords ??= new Set((await Bun.file(commonPasswordsFile).text()).split("\n").filter(Boolean));
  return commonPasswords;
}

const weak = (message: string) => coreError("WEAK_PASSWORD", { message });

/** Passwords are never trimmed; only NFC, so the same password typed on two keyboards matches. */
export function normalisePassword(password: string): string {
  return password.normalize("NFC");
}

/** NIST SP 800-63B: length, not common, not the email; complexity only when configured. Throws 400 WEAK_PASSWORD. */
export async function assertPasswordPolicy(config: Config, password: string, email?: string | null): Promise<void> {
  const pw = normalisePassword(password);
  const length = [...pw].length;
  if (length < config.PASSWORD_MIN_LENGTH) throw weak(`Password must be at least ${config.PASSWORD_MIN_LENGTH} characters`);
  if (length > 128) throw weak("Password must be at most 128 characters");
  const lower = pw.toLowerCase();
  if ((await loadCommonPasswords()).has(lower)) throw weak("This password is too common");
  if (email && (lower === email.toLowerCase() || lower === email.split("@")[0]?.toLowerCase())) {
    throw weak("Password must not be your email");
  }
  if (config.PASSWORD_REQUIRE_COMPLEXITY) {
    const ok = /\p{Lu}/u.test(pw) && /\p{Ll}/u.test(pw) && /\p{Nd}/u.test(pw) && /[^\p{L}\p{Nd}]/u.test(pw);
    if (!ok) throw weak("Password needs an upper-case letter, a lower-case letter, a digit and a symbol");
  }
}

/** Runs at most `limit` tasks at once; the others wait their turn, first come first served. */
export class Gate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      // The place passes straight to the next in line, so a newcomer cannot overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/**
 * Verified against for unknown accounts, so a miss costs what a hit does: a hash in Bun.password's own form (salt
 * and output of its lengths) with the configured cost, made of random bytes rather than computed. No password
 * matches it, and a start spends no argon2 run (and its PASSWORD_HASH_MEMORY_KIB) on it.
 */
function dummyHash(memoryCost: number, timeCost: number): string {
  const b64 = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64").replace(/=+$/, "");
  return `$argon2id$v=19$m=${memoryCost},t=${timeCost},p=1$${b64(32)}$${b64(32)}`;
}

/**
 * argon2id via Bun.password, with the configured cost, at most PASSWORD_HASH_CONCURRENCY at once (by default one per
 * CPU the process may use). Each computation fills PASSWORD_HASH_MEMORY_KIB and keeps a core busy, so more at once
 * only share the cores and the caches: a burst of sign-ins queues here, and memory stays bounded whatever the load.
 */
export class PasswordHasher {
  private readonly dummy: string;
  private readonly gate: Gate;

  constructor(private readonly config: Config) {
    this.gate = new Gate(config.PASSWORD_HASH_CONCURRENCY);
    this.dummy = dummyHash(this.params.memoryCost, this.params.timeCost);
  }

  private get params() {
    return {
      algorithm: "argon2id" as const,
      memoryCost: this.config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: this.config.PASSWORD_HASH_TIME_COST,
    };
  }

  hash(password: string): Promise<string> {
    return this.gate.run(() => Bun.password.hash(normalisePassword(password), this.params));
  }

  /** Verifies against `hash`, or against a dummy hash when there is none, so timing says nothing. */
  async verify(password: string, hash: string | null | undefined): Promise<boolean> {
    const against = hash || this.dummy;
    const ok = await this.gate.run(() => Bun.password.verify(normalisePassword(password), against).catch(() => false));
    return Boolean(hash) && ok;
  }

  /** True when a stored hash was made with other parameters than the configured ones. */
  needsRehash(hash: string): boolean {
    const m = /^\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=\d+\$/.exec(hash);
    return !m || Number(m[1]) !== this.params.memoryCost || Number(m[2]) !== this.params.timeCost;
  }
}
