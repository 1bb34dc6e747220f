import { and, asc, eq, gt, isNull, lt, or } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import type { UserRow } from "../../src/db/schema";
import type { Unsealed } from "../../src/tokens/keys";
import { mfaError } from "./errors";
import { totpSecrets } from "./schema";

/** RFC 6238 as every authenticator app expects it: SHA-1, 6 digits, 30 s. */
const TOTP_PERIOD_S = 30;
const TOTP_DIGITS = 6;
/** One step either side: a code typed just as it rolls over still works, and clocks may drift a little. */
const TOTP_WINDOW = 1;
/** 160 bits, the size RFC 4226 recommends for SHA-1. */
const SECRET_BYTES = 20;

const TOTP_PURPOSE = "totp";
/** A TOTP secret as it was stored before it was sealed: base32 of SECRET_BYTES. */
const PLAIN_SECRET = /^[A-Z2-7]{32}$/;
const RESEAL_PAGE = 500;

/**
 * The TOTP secret of a row, opened with any key of the ring; `stale` when it should be sealed again with the first.
 * A row no key opens (a key dropped from ENCRYPTION_KEYS too early) is logged and answers null: the code is refused,
 * the user can still use a recovery code, and the operator learns which setting to fix.
 */
async function openTotpSecret(ctx: AuthContext, stored: string): Promise<Unsealed | null> {
  const opened = await ctx.secrets.unseal(TOTP_PURPOSE, stored);
  if (opened) return opened;
  if (PLAIN_SECRET.test(stored)) return { value: stored, stale: true };
  ctx.logger.error("a TOTP secret opens with no key of ENCRYPTION_KEYS: put back the key that sealed it (last in the list)");
  return null;
}

/** Seals every TOTP secret an older key of the ring sealed with the first one; answers how many were sealed again. */
export async function resealTotpSecrets(ctx: AuthContext): Promise<number> {
  let count = 0;
  let after: string | undefined;
  for (;;) {
    const rows = await ctx.db
      .select({ userId: totpSecrets.userId, secretEncrypted: totpSecrets.secretEncrypted })
      .from(totpSecrets)
      .where(after ? gt(totpSecrets.userId, after) : undefined)
      .orderBy(asc(totpSecrets.userId))
      .limit(RESEAL_PAGE);
    if (rows.length === 0) return count;
    after = rows.at(-1)?.userId;
    count += await resealRows(ctx, rows);
  }
}

async function resealRows(ctx: AuthContext, rows: Array<{ userId: string; secretEncrypted: string }>): Promise<number> {
  let count = 0;
  for (const row of rows) {
    const opened = await openTotpSecret(ctx, row.secretEncrypted);
    if (!opened?.stale) continue;
    const resealed = await ctx.secrets.seal(TOTP_PURPOSE, opened.value);
    // Only if the row still holds what was read: a secret replaced meanwhile (a new enrolment) is left alone.
    const done = await ctx.db
      .update(totpSecrets)
      .set({ secretEncrypted: resealed })
      .where(and(eq(totpSecrets.userId, row.userId), eq(totpSecrets.secretEncrypted, row.secretEncrypted)))
      .returning({ userId: totpSecrets.userId });
    count += done.length;
  }
  return count;
}

export const mfaAlreadyEnabled = () => mfaError("MFA_ALREADY_ENABLED");

function totpFor(ctx: AuthContext, secret: Secret, label: string): TOTP {
  return new TOTP({
    issuer: ctx.config.webauthn.rpName,
    label,
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    secret,
  });
}

export type TotpEnrollment = { secret: string; otpauthUrl: string; qrCode: string };

/** Makes a new secret for the user (replacing an unconfirmed one) and the QR code an authenticator app scans. */
export async function enrollTotp(ctx: AuthContext, user: UserRow): Promise<TotpEnrollment> {
  const secret = new Secret({ size: SECRET_BYTES });
  const sealed = await ctx.secrets.seal(TOTP_PURPOSE, secret.base32);
  await ctx.db
    .insert(totpSecrets)
    .values({ userId: user.id, secretEncrypted: sealed, confirmed: false, lastStep: null })
    .onConflictDoUpdate({
      target: totpSecrets.userId,
      set: { secretEncrypted: sealed, confirmed: false, lastStep: null, createdAt: ctx.clock.now() },
      // A confirmed secret is only ever replaced by turning MFA off first (which needs a code).
      setWhere: eq(totpSecrets.confirmed, false),
    })
    .returning({ userId: totpSecrets.userId })
    .then((rows) => {
      if (rows.length === 0) throw mfaAlreadyEnabled();
    });
  const otpauthUrl = totpFor(ctx, secret, user.email ?? user.username ?? user.id).toString();
  return { secret: secret.base32, otpauthUrl, qrCode: await (await import("qrcode")).default.toDataURL(otpauthUrl, { errorCorrectionLevel: "M" }) };
}

/**
 * Checks a TOTP code and spends its time step: the step is stored only if it is later than the last one accepted,
 * in one conditional UPDATE, so a code (or an older one still inside the window) works once even under concurrency.
 * Pass `db` to spend the step inside the caller's transaction.
 */
export async function spendTotpCode(ctx: AuthContext, userId: string, rawCode: string, opts: { confirmed: boolean; db?: Db }): Promise<boolean> {
  const code = rawCode.replace(/\s/g, "");
  if (!/^\d{6}$/.test(code)) return false;
  const db = opts.db ?? ctx.db;
  const [row] = await db.select().from(totpSecrets).where(eq(totpSecrets.userId, userId)).limit(1);
  if (!row || row.confirmed !== opts.confirmed) return false;
  const opened = await openTotpSecret(ctx, row.secretEncrypted);
  if (!opened) return false;
  const secret = Secret.fromBase32(opened.value);
  const timestamp = ctx.clock.now().getTime();
  const totp = totpFor(ctx, secret, userId);
  const delta = totp.validate({ token: code, timestamp, window: TOTP_WINDOW });
  if (delta === null) return false;
  const step = totp.counter({ timestamp }) + delta;
  // Sealed by an older key of the ring (or not at all): sealed again with the first, in the same write.
  const resealed = opened.stale ? { secretEncrypted: await ctx.secrets.seal(TOTP_PURPOSE, opened.value) } : {};
  const spent = await db
    .update(totpSecrets)
    .set({ lastStep: step, ...resealed })
    .where(and(eq(totpSecrets.userId, userId), or(isNull(totpSecrets.lastStep), lt(totpSecrets.lastStep, step))))
    .returning({ userId: totpSecrets.userId });
  return spent.length === 1;
}
