import { limitMailFromIp, limitSignUp } from "../../src/abuse-limits";
import { assertCaptcha } from "../../src/captcha";
import type { AuthContext, SignInResult } from "../../src/context";
import type { UserRow } from "../../src/db/schema";
import { AuthError, errors } from "../../src/errors";
import { magicCodeError } from "./errors";
import { claimUnverifiedAccount } from "../../src/credentials";
import { sendEmailDetached } from "../../src/mail";
import type { RequestMeta } from "../../src/request";
import type { AuthInfo } from "../../src/sessions/service";

/** The purpose under which sign-in codes live in `ctx.codes`. */
export const MAGIC_CODE_PURPOSE = "magic";

/** The authentication method reference of a code sign-in: proof of control of the email address. */
export const MAGIC_CODE_AMR = ["email"];

export type CodeRequest = { email: string; dashboard: boolean; captchaToken?: string; meta: RequestMeta };

/**
 * Issues a sign-in code and mails it. Known and unknown emails take the same path and the same time (the one lookup
 * is for a ban, whose account is mailed nothing); the mail is rendered here but handed to the mailer without waiting,
 * so a slow SMTP server neither delays the answer nor tells anything about the address.
 * With `dashboard`, the caller asked explicitly to sign in to an admin dashboard, and is told why not.
 */
export async function requestCode(ctx: AuthContext, request: CodeRequest): Promise<void> {
  const { email } = request;
  await assertCaptcha(ctx.config, request.captchaToken, request.meta.ip);
  await limitSignUp(ctx, request.meta);
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", email);
  await limitMailFromIp(ctx, request.meta);
  const user = await ctx.users.findByEmail(email);
  if (request.dashboard) {
    if (!user) throw magicCodeError("USER_NOT_FOUND");
    if (!ctx.users.isAdminOnceProven(user)) throw errors.forbidden("This account may not sign in to the dashboard");
  }
  // A banned account is mailed nothing: the answer stays the same (202), the code is rendered but goes nowhere.
  const banned = user !== undefined && ctx.users.isBanned(user, ctx.clock.now());
  const code = banned ? "000000" : await ctx.codes.issue(MAGIC_CODE_PURPOSE, email);
  await sendEmailDetached(ctx, banned ? null : email, "sign-in-code", { code });
}

/**
 * Checks a code and signs in: the account with this email (now known to be verified), a new verified account for an
 * unknown email, or, when a guest sends their Bearer token, the guest itself upgraded in place (same id).
 * The code is spent before any account is looked at: checking for a conflict first would let anyone holding a
 * guest token learn which emails are registered without owning them. So a 409 EMAIL_TAKEN costs the code.
 */
export async function verifyCode(
  ctx: AuthContext,
  input: { email: string; code: string; auth: AuthInfo | null; meta: RequestMeta },
): Promise<SignInResult> {
  const { email, meta } = input;
  const consumed = await ctx.codes.consume(MAGIC_CODE_PURPOSE, email, input.code);
  if (!consumed) {
    // Known accounts are named, as on a failed password: the audit trail is per user.
    const user = await ctx.users.findByEmail(email);
    await ctx.audit.record({ type: "sign_in_failed", userId: user?.id ?? null, meta, data: { method: "magic-code", reason: "invalid_code" } });
    await ctx.events.emit(ctx.db, { type: "user.sign_in_failed", data: { email, userId: user?.id ?? null, method: "magic-code", ip: meta.ip } });
    throw errors.invalidCode();
  }

  const caller = input.auth ? await ctx.users.findById(input.auth.userId) : undefined;
  if (caller?.isAnonymous) {
    const user = await upgradeGuest(ctx, caller, email, meta);
    return ctx.signIn(user, { amr: MAGIC_CODE_AMR, meta, method: "magic-code" });
  }

  const { user, madeNow } = await findOrCreateVerified(ctx, email, meta);
  return ctx.signIn(user, { amr: MAGIC_CODE_AMR, meta, method: "magic-code", madeNow });
}

async function upgradeGuest(ctx: AuthContext, guest: UserRow, email: string, meta: RequestMeta): Promise<UserRow> {
  // An email that belongs to another account ends in 409 EMAIL_TAKEN: the unique index refuses it, both stay intact.
  await ctx.beforeSignUp({ email, method: "magic-code", ip: meta.ip, userAgent: meta.userAgent });
  // A guest's account was announced when it was made: its upgrade is an update of it.
  const user = await ctx.events.atomic(async (tx) => {
    const row = await ctx.users.upgradeGuest(guest.id, { email, emailVerified: true }, tx);
    await ctx.events.emit(tx, { type: "user.updated", data: { user: ctx.users.toPublic(row) } });
    return row;
  });
  await ctx.audit.record({ type: "guest_upgraded", userId: user.id, meta, data: { method: "magic-code" } });
  return user;
}

/** The verified account of `email`, and whether this call made it. */
async function findOrCreateVerified(ctx: AuthContext, email: string, meta: RequestMeta): Promise<{ user: UserRow; madeNow: boolean }> {
  const existing = await ctx.users.findByEmail(email);
  if (existing) return { user: existing.emailVerified ? existing : await claimUnverifiedAccount(ctx, existing, meta), madeNow: false };
  await ctx.beforeSignUp({ email, method: "magic-code", ip: meta.ip, userAgent: meta.userAgent });
  try {
    const user = await ctx.events.atomic(async (tx) => {
      const row = await ctx.users.create({ email, emailVerified: true }, tx);
      await ctx.events.emit(tx, { type: "user.created", data: { user: ctx.users.toPublic(row) } });
      return row;
    });
    await ctx.audit.record({ type: "sign_up", userId: user.id, meta, data: { method: "magic-code" } });
    return { user, madeNow: true };
  } catch (error) {
    // Someone registered this email between our lookup and insert; the code proves the address, so sign that account in.
    if (!(error instanceof AuthError && error.code === "EMAIL_TAKEN")) throw error;
    const raced = await ctx.users.findByEmail(email);
    if (!raced) throw error;
    return { user: raced.emailVerified ? raced : await claimUnverifiedAccount(ctx, raced, meta), madeNow: false };
  }
}
