import { and, eq, gt, isNull, lt, or } from "drizzle-orm";
import { limitMailFromIp, limitSignUp } from "../../src/abuse-limits";
import { assertCaptcha } from "../../src/captcha";
import type { AuthContext, SignInResult } from "../../src/context";
import { newId, randomToken, sha256 } from "../../src/crypto";
import type { Db } from "../../src/db";
import { type UserRow, users } from "../../src/db/schema";
import { AuthError, errors } from "../../src/errors";
import { passwordError } from "./errors";
import { sendEmailDetached } from "../../src/mail";
import { removeUnprovenCredentials } from "../../src/credentials";
import { assertPasswordPolicy, normalisePassword } from "../../src/passwords";
import { deleteInBatches, retentionCutoff } from "../../src/retention";
import type { RequestMeta } from "../../src/request";
import type { AuthInfo } from "../../src/sessions/service";
import { type PublicUser, requireEmail, usernameTaken } from "../../src/users";
import { passwordResetTokens } from "./schema";

export const RESET_TOKEN_TTL_S = 60 * 60;

/** Every error code this plugin answers with, beyond the core's. */
export const passwordErrors = {
  invalidCredentials: errors.invalidCredentials,
  passwordMismatch: () => passwordError("PASSWORD_MISMATCH"),
  emailNotVerified: () => passwordError("EMAIL_NOT_VERIFIED"),
  invalidToken: () => passwordError("INVALID_RESET_TOKEN"),
  guestCannotChangeEmail: () => errors.forbidden("A guest account registers instead of changing its email"),
};

const CODE_PURPOSE = { verifyEmail: "verify-email", emailChange: "email-change" } as const;

export type PendingConfirmation = { code: "PENDING_CONFIRMATION"; message: string };
export type RegisterResult = { status: 201; body: SignInResult } | { status: 202; body: PendingConfirmation };

export type RegisterInput = {
  email: string;
  password: string;
  confirmPassword?: string;
  firstName?: string;
  lastName?: string;
  username?: string;
  captchaToken?: string;
};

/** The two must be the same password, compared as they are hashed (NFC): not necessarily the same code points. */
function assertConfirmed(password: string, confirmPassword: string | undefined): void {
  if (confirmPassword !== undefined && normalisePassword(confirmPassword) !== normalisePassword(password)) throw passwordErrors.passwordMismatch();
}

async function sendVerificationCode(ctx: AuthContext, user: UserRow & { email: string }): Promise<void> {
  const code = await ctx.codes.issue(CODE_PURPOSE.verifyEmail, user.email, { userId: user.id });
  await sendEmailDetached(ctx, user.email, "verify-email", { code });
}

const pendingConfirmation = (): PendingConfirmation => ({
  code: "PENDING_CONFIRMATION",
  message: "Check your inbox for a code to confirm your email address",
});

/**
 * Creates an account, or turns the caller's guest account into one in place (same id) when a guest token is sent.
 * Two registrations of one email race on the unique index: one wins, the other gets 409 EMAIL_TAKEN.
 */
export async function register(ctx: AuthContext, input: RegisterInput, caller: AuthInfo | null, meta: RequestMeta): Promise<RegisterResult> {
  await assertCaptcha(ctx.config, input.captchaToken, meta.ip);
  const email = requireEmail(input.email);
  assertConfirmed(input.password, input.confirmPassword);
  await assertPasswordPolicy(ctx.config, input.password, email);
  await limitSignUp(ctx, meta);
  const guest = caller ? await ctx.users.findById(caller.userId) : undefined;
  const upgraded = guest?.isAnonymous === true;
  // The username is judged before the email, so a taken one answers 409 USERNAME_TAKEN whether or not the email is
  // registered: with verification on, a taken email must look like a free one, and the username must not tell them apart.
  const usernameHeld = async () => {
    const holder = input.username ? await ctx.users.findByUsername(input.username) : undefined;
    return holder !== undefined && !(upgraded && holder.id === guest.id);
  };
  if (await usernameHeld()) throw usernameTaken();
  // With verification on, every registration mails the address (a code, or a notice to an existing owner): cap it per
  // address like any other mailed code, the same for taken and free emails.
  if (ctx.config.REQUIRE_EMAIL_VERIFICATION) {
    await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", email);
    await limitMailFromIp(ctx, meta);
  }
  await ctx.beforeSignUp({ email, method: "password", ip: meta.ip, userAgent: meta.userAgent });
  const profile = { firstName: input.firstName || null, lastName: input.lastName || null, username: input.username || null };
  const fields = {
    email,
    emailVerified: false,
    passwordHash: await ctx.passwords.hash(input.password),
    // A guest keeps what it set on itself: only what this registration gives replaces it.
    ...(upgraded ? Object.fromEntries(Object.entries(profile).filter(([, value]) => value !== null)) : profile),
  };
  let user: UserRow;
  try {
    // A guest's account was announced when it was made: its upgrade is an update of it.
    user = await ctx.events.atomic(async (tx) => {
      const row = upgraded ? await ctx.users.upgradeGuest(guest.id, fields, tx) : await ctx.users.create(fields, tx);
      await ctx.events.emit(tx, { type: upgraded ? "user.updated" : "user.created", data: { user: ctx.users.toPublic(row) } });
      return row;
    });
  } catch (error) {
    // With verification on, a taken email answers the same 202 as a free one (no enumeration); the owner is told instead.
    if (!(ctx.config.REQUIRE_EMAIL_VERIFICATION && error instanceof AuthError && error.code === "EMAIL_TAKEN")) throw error;
    // The username was taken meanwhile: the insert names the email's index first, but the answer must not.
    if (await usernameHeld()) throw usernameTaken();
    const owner = await ctx.users.findByEmail(email);
    await ctx.audit.record({ type: "sign_up_existing_email", userId: owner?.id ?? null, meta });
    // A banned account is mailed nothing; the answer is the same.
    const banned = owner !== undefined && ctx.users.isBanned(owner, ctx.clock.now());
    await sendEmailDetached(ctx, banned ? null : email, "security-notice", {
      event: "Someone tried to create an account with this email address. If it was you, sign in or reset your password.",
    });
    return { status: 202, body: pendingConfirmation() };
  }
  await ctx.audit.record({ type: "sign_up", userId: user.id, meta, data: { method: "password", upgradedGuest: upgraded } });

  if (ctx.config.REQUIRE_EMAIL_VERIFICATION) {
    await sendVerificationCode(ctx, { ...user, email });
    return { status: 202, body: pendingConfirmation() };
  }
  return { status: 201, body: await ctx.signIn(user, { amr: ["pwd"], meta, method: "password", madeNow: !upgraded }) };
}

export type LoginInput = { email?: string; username?: string; password: string; captchaToken?: string };

/**
 * Email or username and password. Unknown accounts and wrong passwords answer alike, and both spend one hash
 * verification. The per-account limit keys on the account name, so a changing client IP cannot dodge it.
 */
export async function login(ctx: AuthContext, input: LoginInput, meta: RequestMeta): Promise<SignInResult> {
  const email = input.email !== undefined ? requireEmail(input.email) : null;
  const identifier = email ?? (input.username ?? "").trim().toLowerCase();
  await Promise.all([
    ctx.rateLimit.hit("RATE_LIMIT_LOGIN_IP", meta.ip ?? "unknown"),
    ctx.rateLimit.hit("RATE_LIMIT_LOGIN_EMAIL", identifier),
  ]);
  await assertCaptcha(ctx.config, input.captchaToken, meta.ip);

  const user = email ? await ctx.users.findByEmail(email) : await ctx.users.findByUsername(identifier);
  // Also per account, whichever name it was reached by: alternating email and username must not double the guesses.
  // Unknown names count under their own key, so both paths do the same work.
  await ctx.rateLimit.hit("RATE_LIMIT_LOGIN_EMAIL", user ? `user:${user.id}` : `name:${identifier}`);
  const ok = await ctx.passwords.verify(input.password, user?.passwordHash ?? null);
  if (!user?.passwordHash || !ok) {
    await ctx.audit.record({ type: "sign_in_failed", userId: user?.id ?? null, meta, data: { method: "password" } });
    await ctx.events.emit(ctx.db, {
      type: "user.sign_in_failed",
      data: { email: email ?? user?.email ?? null, userId: user?.id ?? null, method: "password", ip: meta.ip },
    });
    throw passwordErrors.invalidCredentials();
  }
  if (ctx.config.REQUIRE_EMAIL_VERIFICATION && !user.emailVerified) throw passwordErrors.emailNotVerified();
  const current = ctx.passwords.needsRehash(user.passwordHash)
    ? await ctx.users.update(user.id, { passwordHash: await ctx.passwords.hash(input.password) })
    : user;
  // A reset or change landing while this sign-in runs must not leave it a session made with the old password.
  const stillValid = (now: { passwordHash: string | null }) => now.passwordHash === current.passwordHash;
  return ctx.signIn(current, { amr: ["pwd"], meta, method: "password", stillValid });
}

/** Confirms an address with the code mailed at sign-up (or resent), and signs the user in. */
export async function verifyEmail(ctx: AuthContext, input: { email: string; code: string }, meta: RequestMeta): Promise<SignInResult> {
  const email = requireEmail(input.email);
  const spent = await ctx.codes.consume(CODE_PURPOSE.verifyEmail, email, input.code);
  const user = spent ? await ctx.users.findByEmail(email) : undefined;
  // The code names the account it was sent for: one deleted and re-made with the same email does not inherit it.
  if (!spent || !user || spent.data?.userId !== user.id) throw errors.invalidCode();
  const verified = user.emailVerified
    ? user
    : await ctx.events.atomic(async (tx) => {
        const row = await ctx.users.update(user.id, { emailVerified: true }, tx);
        await ctx.events.emit(tx, { type: "user.updated", data: { user: ctx.users.toPublic(row) } });
        return row;
      });
  await ctx.audit.record({ type: "email_verified", userId: user.id, meta });
  // The proof here is the mailed code, not the password, and the amr says so.
  return ctx.signIn(verified, { amr: ["email"], meta, method: "email_verification" });
}

/** Mails a fresh code to an existing unverified account; answers the same for every email. */
export async function resendVerification(ctx: AuthContext, input: { email: string }, meta: RequestMeta): Promise<void> {
  const email = requireEmail(input.email);
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", email);
  await limitMailFromIp(ctx, meta);
  const user = await ctx.users.findByEmail(email);
  await ctx.audit.record({ type: "verification_email_requested", userId: user?.id ?? null, meta });
  if (user && !user.emailVerified && !ctx.users.isBanned(user, ctx.clock.now())) {
    await sendVerificationCode(ctx, { ...user, email });
  } else {
    // Same rendering work as a real send, so the answer takes the same time.
    await sendEmailDetached(ctx, null, "verify-email", { code: "000000" });
  }
}

export async function isEmailAvailable(ctx: AuthContext, input: { email: string }, meta: RequestMeta): Promise<boolean> {
  await ctx.rateLimit.hit("RATE_LIMIT_EMAIL_CHECK_IP", meta.ip ?? "unknown");
  const email = requireEmail(input.email);
  return !(await ctx.users.findByEmail(email));
}

async function signedInUser(ctx: AuthContext, auth: AuthInfo): Promise<UserRow> {
  const user = await ctx.users.findById(auth.userId);
  if (!user) throw errors.sessionRevoked();
  return user;
}

/**
 * Asks for the password a user has (a stolen access token alone must not move the account elsewhere), counting
 * wrong guesses against the same per-account limit as sign-in.
 */
export async function assertCurrentPassword(ctx: AuthContext, user: UserRow, password: string): Promise<void> {
  await ctx.rateLimit.hit("RATE_LIMIT_LOGIN_EMAIL", `user:${user.id}`);
  if (!(await ctx.passwords.verify(password, user.passwordHash))) throw passwordErrors.invalidCredentials();
}

/** Mails a code to the new address; the code is bound to this user and to that address. */
export async function requestEmailChange(
  ctx: AuthContext,
  auth: AuthInfo,
  input: { newEmail: string; password?: string },
  meta: RequestMeta,
): Promise<void> {
  const newEmail = requireEmail(input.newEmail, "newEmail");
  const user = await signedInUser(ctx, auth);
  if (user.isAnonymous) throw passwordErrors.guestCannotChangeEmail();
  if (newEmail === user.email) throw errors.validation([{ path: "newEmail", message: "is already your email" }]);
  if (user.passwordHash) {
    if (!input.password) throw errors.validation([{ path: "password", message: "is required for an account with a password" }]);
    await assertCurrentPassword(ctx, user, input.password);
  }
  // Per user as well as per address: one account cannot spray codes (or probe addresses) across many inboxes.
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", `email-change:${user.id}`);
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", newEmail);
  await limitMailFromIp(ctx, meta);
  // A taken address answers the same 202 as a free one (no enumeration): its owner is told, and no code exists to confirm.
  if (await ctx.users.findByEmail(newEmail)) {
    await sendEmailDetached(ctx, newEmail, "security-notice", {
      event: "Someone asked to move another account to this email address. It already has an account, so nothing was changed.",
    });
    await ctx.audit.record({ type: "email_change_requested", userId: user.id, meta, data: { addressTaken: true } });
    return;
  }
  const code = await ctx.codes.issue(CODE_PURPOSE.emailChange, user.id, { newEmail });
  await sendEmailDetached(ctx, newEmail, "email-change", { code, newEmail });
  await ctx.audit.record({ type: "email_change_requested", userId: user.id, meta });
}

/**
 * Spends every reset link of a user still outstanding: a link follows the mailbox and the password it was mailed
 * for, so once either changes no older link may set a password.
 */
export async function spendResetLinks(db: Db, userId: string, now: Date): Promise<void> {
  await db
    .update(passwordResetTokens)
    .set({ usedAt: now })
    .where(and(eq(passwordResetTokens.userId, userId), isNull(passwordResetTokens.usedAt)));
}

/**
 * Moves the account to the new address (now verified) and tells the old address. Credentials follow the mailbox:
 * reset links mailed to the old address are spent, and every other session ends (a session opened by whoever read
 * the old mailbox must not outlive the move).
 */
export async function confirmEmailChange(ctx: AuthContext, auth: AuthInfo, input: { code: string }, meta: RequestMeta): Promise<PublicUser> {
  const spent = await ctx.codes.consume(CODE_PURPOSE.emailChange, auth.userId, input.code);
  const newEmail = spent?.data?.newEmail;
  if (typeof newEmail !== "string") throw errors.invalidCode();
  const before = await signedInUser(ctx, auth);
  const { user, revoked } = await ctx.sessions.transaction(async (tx) => {
    await spendResetLinks(tx, auth.userId, ctx.clock.now());
    const row = await ctx.users.update(auth.userId, { email: newEmail, emailVerified: true }, tx);
    await ctx.events.emit(
      tx,
      { type: "email.changed", data: { userId: row.id, email: newEmail } },
      { type: "user.updated", data: { user: ctx.users.toPublic(row) } },
    );
    return { user: row, revoked: await ctx.sessions.revokeAll(row.id, auth.sessionId, "email_changed", tx) };
  });
  await sendEmailDetached(ctx, before.email, "email-changed", { newEmail });
  await ctx.audit.record({ type: "email_changed", userId: user.id, meta, data: { from: before.email, to: newEmail, sessionsRevoked: revoked } });
  return ctx.users.toPublic(user);
}

/** Changes the password of the signed-in user; every other session dies. */
export async function changePassword(
  ctx: AuthContext,
  auth: AuthInfo,
  input: { currentPassword: string; newPassword: string; confirmPassword?: string },
  meta: RequestMeta,
): Promise<void> {
  const user = await signedInUser(ctx, auth);
  // The cheap checks first: a typo in the new password must not spend a hash verification or a counted attempt.
  assertConfirmed(input.newPassword, input.confirmPassword);
  await assertPasswordPolicy(ctx.config, input.newPassword, user.email);
  await assertCurrentPassword(ctx, user, input.currentPassword);
  const passwordHash = await ctx.passwords.hash(input.newPassword);
  // The new password and the end of every other session commit together, or neither does.
  const revoked = await ctx.sessions.transaction(async (tx) => {
    await spendResetLinks(tx, user.id, ctx.clock.now());
    await ctx.users.update(user.id, { passwordHash }, tx);
    await ctx.events.emit(tx, { type: "password.changed", data: { userId: user.id } });
    return ctx.sessions.revokeAll(user.id, auth.sessionId, "password_changed", tx);
  });
  await sendEmailDetached(ctx, user.email, "password-changed", {});
  await ctx.audit.record({ type: "password_changed", userId: user.id, meta, data: { method: "change", sessionsRevoked: revoked } });
}

/**
 * Mails a reset link when the account exists. Known and unknown emails do the same lookup, token, audit and
 * rendering work and get the same answer; only the token insert and the (detached) send differ.
 */
export async function forgotPassword(ctx: AuthContext, input: { email: string; captchaToken?: string }, meta: RequestMeta): Promise<void> {
  await assertCaptcha(ctx.config, input.captchaToken, meta.ip);
  const email = requireEmail(input.email);
  await ctx.rateLimit.hit("RATE_LIMIT_CODE_EMAIL", email);
  await limitMailFromIp(ctx, meta);
  const found = await ctx.users.findByEmail(email);
  const now = ctx.clock.now();
  // A banned account gets no link: it is one more way back in, and a ban mails nothing.
  const user = found && !ctx.users.isBanned(found, now) ? found : undefined;
  const token = randomToken(32);
  const audited = ctx.audit.record({ type: "password_reset_requested", userId: found?.id ?? null, meta });
  // The answer does not wait for the token's row, which only a known email has: waiting would make it slower than an
  // unknown one. The insert runs when sendEmailDetached chains on it, after the answer's own work, and the link is
  // mailed once the row is written, so it always works when it arrives.
  const stored = user
    ? ctx.db.insert(passwordResetTokens).values({
        id: newId(),
        userId: user.id,
        tokenHash: sha256(token),
        createdAt: now,
        expiresAt: new Date(now.getTime() + RESET_TOKEN_TTL_S * 1000),
      })
    : undefined;
  await audited;
  await sendEmailDetached(ctx, user ? email : null, "password-reset", { link: resetLink(ctx, token) }, stored);
}

const resetLink = (ctx: AuthContext, token: string) => `${ctx.config.APP_URL.replace(/\/$/, "")}${ctx.config.PASSWORD_RESET_PATH}?token=${token}`;

/** Mails a link that sets the first password of an account made without one: a reset link that lives `days` days. */
export async function mailSetPasswordLink(ctx: AuthContext, user: { id: string; email: string }, days: number): Promise<void> {
  const token = randomToken(32);
  const now = ctx.clock.now();
  const stored = ctx.db.insert(passwordResetTokens).values({
    id: newId(),
    userId: user.id,
    tokenHash: sha256(token),
    createdAt: now,
    expiresAt: new Date(now.getTime() + days * 86_400_000),
  });
  await sendEmailDetached(ctx, user.email, "password-reset", { link: resetLink(ctx, token), newAccount: { days } }, stored);
}

const liveToken = (tokenHash: string, now: Date) =>
  and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.usedAt), gt(passwordResetTokens.expiresAt, now));

async function findLiveResetToken(ctx: AuthContext, token: string) {
  const [row] = await ctx.db
    .select({ userId: passwordResetTokens.userId })
    .from(passwordResetTokens)
    .where(liveToken(sha256(token), ctx.clock.now()))
    .limit(1);
  return row;
}

export async function isResetTokenValid(ctx: AuthContext, input: { token: string }): Promise<boolean> {
  return (await findLiveResetToken(ctx, input.token)) !== undefined;
}

/**
 * Sets a new password with a reset token. The policy is checked before the token is spent (a weak choice does not
 * burn the link); spending it is one conditional UPDATE, so of two concurrent resets exactly one wins.
 */
export async function resetPassword(ctx: AuthContext, input: { token: string; newPassword: string }, meta: RequestMeta): Promise<void> {
  const found = await findLiveResetToken(ctx, input.token);
  const user = found ? await ctx.users.findById(found.userId) : undefined;
  if (!user) throw passwordErrors.invalidToken();
  await assertPasswordPolicy(ctx.config, input.newPassword, user.email);
  const passwordHash = await ctx.passwords.hash(input.newPassword);

  const now = ctx.clock.now();
  // The new password, the spent link and the end of every session commit together, or none of them does.
  const revoked = await ctx.sessions.transaction(async (tx) => {
    const [spent] = await tx
      .update(passwordResetTokens)
      .set({ usedAt: now })
      .where(liveToken(sha256(input.token), now))
      .returning({ userId: passwordResetTokens.userId });
    if (!spent) return undefined;
    // Older links of this user die with the one used: a reset closes every other way back in.
    await spendResetLinks(tx, spent.userId, now);
    // They proved they read the mailbox, so the address is verified too; on an account nobody had verified, whatever
    // else its creator set up (a passkey, TOTP, a linked provider) dies with the old password.
    const unproven = !user.emailVerified;
    if (unproven) await removeUnprovenCredentials(ctx, spent.userId, tx);
    const row = await ctx.users.update(spent.userId, { passwordHash, emailVerified: true, ...(unproven ? { mfaEnabled: false } : {}) }, tx);
    await ctx.events.emit(
      tx,
      { type: "password.reset", data: { userId: row.id } },
      ...(unproven ? [{ type: "user.updated" as const, data: { user: ctx.users.toPublic(row) } }] : []),
      ...(unproven && user.mfaEnabled ? [{ type: "mfa.disabled" as const, data: { userId: row.id } }] : []),
    );
    return ctx.sessions.revokeAll(user.id, undefined, "password_reset", tx);
  });
  if (revoked === undefined) throw passwordErrors.invalidToken();

  // An attacker's wrong guesses locked the account's sign-in; the owner just proved the mailbox, so let them in now.
  const names = [`user:${user.id}`, user.email, user.username?.toLowerCase()].filter((n): n is string => Boolean(n));
  await Promise.all(names.map((name) => ctx.rateLimit.clear("RATE_LIMIT_LOGIN_EMAIL", name)));
  await sendEmailDetached(ctx, user.email, "password-changed", {});
  await ctx.audit.record({ type: "password_changed", userId: user.id, meta, data: { method: "reset", sessionsRevoked: revoked } });
  if (!user.emailVerified && user.mfaEnabled) await ctx.audit.record({ type: "mfa_disabled", userId: user.id, meta, data: { method: "reset" } });
}

/** A password is one way into the account. */
export async function countPasswords(userId: string, db: Db): Promise<number> {
  const [row] = await db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, userId));
  return row?.passwordHash ? 1 : 0;
}

/** Retention (a maintenance task): reset links spent or expired more than a day ago go; a late click still answers INVALID_RESET_TOKEN. */
export async function deleteEndedResetTokens(ctx: AuthContext): Promise<number> {
  const cutoff = retentionCutoff(ctx);
  const ended = or(lt(passwordResetTokens.usedAt, cutoff), lt(passwordResetTokens.expiresAt, cutoff));
  return deleteInBatches(ctx.db, passwordResetTokens, passwordResetTokens.id, ended);
}
