import type { AuthContext, MfaChallenge } from "../../src/context";
import { randomToken, sha256 } from "../../src/crypto";
import type { UserRow } from "../../src/db/schema";
import { mfaError } from "./errors";
import type { RequestMeta } from "../../src/request";

export const MFA_TOKEN_TTL_S = 300;
export const MFA_TOKEN_ATTEMPTS = 5;

/** What a password (or other first-factor) sign-in left for the second factor to finish. */
export type PendingSignIn = { userId: string; amr: string[] };

const tokenKey = (tokenHash: string) => `mfa-token:${tokenHash}`;
const attemptsKey = (tokenHash: string) => `mfa-token-attempts:${tokenHash}`;

export const mfaTokenInvalid = () => mfaError("MFA_TOKEN_INVALID");

/** How an mfaToken is answered: `POST /mfa/verify` (TOTP) or `POST /mfa/recover`. A passkey signs in on its own. */
const CHALLENGE_METHODS = ["totp", "recovery_code"];

/** Answers a first-factor sign-in of a user with MFA on: an opaque token, kept only as its hash, for 5 minutes. */
export async function issueMfaChallenge(ctx: AuthContext, user: UserRow, opts: { amr: string[]; meta: RequestMeta }): Promise<MfaChallenge> {
  const mfaToken = randomToken();
  const pending: PendingSignIn = { userId: user.id, amr: opts.amr };
  await ctx.kv.set(tokenKey(sha256(mfaToken)), JSON.stringify(pending), MFA_TOKEN_TTL_S);
  await ctx.audit.record({ type: "mfa_challenge", userId: user.id, meta: opts.meta, data: { amr: opts.amr } });
  return { mfaRequired: true, mfaToken, methods: [...CHALLENGE_METHODS] };
}

/**
 * Reads the sign-in an mfaToken stands for, reserving one of its 5 attempts first, so parallel guesses never get
 * more than 5 evaluations; past that the token is deleted. Throws 401 when the token is unknown, spent or dead.
 */
export type OpenedMfaToken = PendingSignIn & { tokenHash: string; attempt: number };

export async function openMfaToken(ctx: AuthContext, mfaToken: string): Promise<OpenedMfaToken> {
  const tokenHash = sha256(mfaToken);
  const attempts = await ctx.kv.incr(attemptsKey(tokenHash), MFA_TOKEN_TTL_S);
  if (attempts.count > MFA_TOKEN_ATTEMPTS) {
    await ctx.kv.del(tokenKey(tokenHash));
    throw mfaTokenInvalid();
  }
  const raw = await ctx.kv.get(tokenKey(tokenHash));
  if (!raw) throw mfaTokenInvalid();
  return { ...(JSON.parse(raw) as PendingSignIn), tokenHash, attempt: attempts.count };
}

/** Spends the token after a right answer; false when a concurrent request spent it first. */
export async function spendMfaToken(ctx: AuthContext, tokenHash: string): Promise<boolean> {
  const taken = await ctx.kv.getDel(tokenKey(tokenHash));
  if (taken === null) return false;
  await ctx.kv.del(attemptsKey(tokenHash));
  return true;
}

/** After a wrong answer: the fifth one kills the token at once. */
export async function recordWrongAnswer(ctx: AuthContext, opened: OpenedMfaToken): Promise<void> {
  if (opened.attempt >= MFA_TOKEN_ATTEMPTS) await ctx.kv.del(tokenKey(opened.tokenHash));
}
