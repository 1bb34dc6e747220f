import { and, eq, isNull, lt, or } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import type { AuthContext } from "../../src/context";
import { decrypt, encrypt } from "../../src/crypto";
import type { Db } from "../../src/db";
import type { UserRow } from "../../src/db/schema";
import { mfaError } from "./errors";
import { totpSecrets } from "./schema";

/** RFC 6238 as every authenticator app expects it: SHA-1, 6 digits, 30 s. */
const TOTP_PERIOD_S = 30;
const TOTP_DIGITS = 6;
/** One step either side: a code typed just as it rolls over still works, and clocks may drift a little. */
const TOTP_WINDOW = 1;
/** 160 bits, the size RFC 4226 recommends for SHA-1. */
const SECRET_BYTES = 20;

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
  const sealed = encrypt(await ctx.secrets.get("totp", { sealing: true }), secret.base32);
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
  const secret = Secret.fromBase32(decrypt(await ctx.secrets.get("totp", { sealing: true }), row.secretEncrypted));
  const timestamp = ctx.clock.now().getTime();
  const totp = totpFor(ctx, secret, userId);
  const delta = totp.validate({ token: code, timestamp, window: TOTP_WINDOW });
  if (delta === null) return false;
  const step = totp.counter({ timestamp }) + delta;
  const spent = await db
    .update(totpSecrets)
    .set({ lastStep: step })
    .where(and(eq(totpSecrets.userId, userId), or(isNull(totpSecrets.lastStep), lt(totpSecrets.lastStep, step))))
    .returning({ userId: totpSecrets.userId });
  return spent.length === 1;
}
