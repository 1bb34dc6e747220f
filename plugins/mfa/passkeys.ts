import { createHmac } from "node:crypto";
import { isUuid } from "../../src/validation";
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { and, asc, count, eq } from "drizzle-orm";
import { notifySignInMethodChanged } from "../../src/notices";
import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import { newId, randomToken, sha256 } from "../../src/crypto";
import { errors } from "../../src/errors";
import type { RequestMeta } from "../../src/request";
import type { TokenResponse } from "../../src/sessions/service";
import { mfaError } from "./errors";
import { passkeys } from "./schema";

/** Loaded on the first passkey request: the WebAuthn library costs ~18 MB that most servers never use. */
const webauthn = () => import("@simplewebauthn/server");

const CHALLENGE_TTL_S = 300;

type LoginChallenge = { challenge: string; userId: string | null };
export type PasskeySummary = { id: string; name: string | null; createdAt: string; lastUsedAt: string | null };

const registrationKey = (userId: string) => `passkey-registration:${userId}`;
const loginKey = (challengeId: string) => `passkey-login:${sha256(challengeId)}`;

const passkeyRefused = () => mfaError("PASSKEY_INVALID");

function summary(row: typeof passkeys.$inferSelect): PasskeySummary {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), lastUsedAt: row.lastUsedAt?.toISOString() ?? null };
}

/** Passkeys sign in on their own, so each is a way into the account. */
export async function countPasskeys(userId: string, db: Db): Promise<number> {
  const [row] = await db.select({ n: count() }).from(passkeys).where(eq(passkeys.userId, userId));
  return row?.n ?? 0;
}

/** Options for navigator.credentials.create(); the challenge is kept for 5 minutes, one per user, single use. */
export async function registrationOptions(ctx: AuthContext, userId: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const user = await ctx.users.findById(userId);
  if (!user) throw errors.unauthorized();
  const existing = await ctx.db.select().from(passkeys).where(eq(passkeys.userId, userId));
  const { rpId, rpName } = ctx.config.webauthn;
  const userName = user.email ?? user.username ?? user.id;
  const options = await (await webauthn()).generateRegistrationOptions({
    rpName,
    rpID: rpId,
    userName,
    userID: new TextEncoder().encode(user.id),
    userDisplayName: [user.firstName, user.lastName].filter(Boolean).join(" ") || userName,
    timeout: CHALLENGE_TTL_S * 1000,
    attestationType: "none",
    excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports ?? undefined })),
    authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
  });
  await ctx.kv.set(registrationKey(userId), options.challenge, CHALLENGE_TTL_S);
  return options;
}

export async function registerPasskey(
  ctx: AuthContext,
  input: { userId: string; response: RegistrationResponseJSON; name?: string; meta: RequestMeta },
): Promise<PasskeySummary> {
  const user = await ctx.users.findById(input.userId);
  if (!user) throw errors.unauthorized();
  const challenge = await ctx.kv.getDel(registrationKey(user.id));
  if (!challenge) throw mfaError("INVALID_REGISTRATION_CHALLENGE");
  const { rpId, origin } = ctx.config.webauthn;
  const verification = await (await webauthn()).verifyRegistrationResponse({
    response: input.response,
    expectedChallenge: challenge,
    expectedOrigin: origin,
    expectedRPID: rpId,
    requireUserVerification: false,
  }).catch(() => null);
  if (!verification?.verified) throw mfaError("INVALID_PASSKEY_REGISTRATION");
  const { credential, credentialDeviceType, credentialBackedUp } = verification.registrationInfo;
  const row = await ctx.events.atomic(async (tx) => {
    const [added] = await tx
    .insert(passkeys)
    .values({
      id: newId(),
      userId: user.id,
      credentialId: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString("base64url"),
      counter: credential.counter,
      transports: credential.transports ?? null,
      deviceType: credentialDeviceType,
      backedUp: credentialBackedUp,
      name: input.name ?? "Passkey",
      createdAt: ctx.clock.now(),
    })
    .onConflictDoNothing({ target: passkeys.credentialId })
    .returning();
    if (added) await ctx.events.emit(tx, { type: "passkey.added", data: { userId: user.id, passkeyId: added.id } });
    return added;
  });
  if (!row) throw mfaError("PASSKEY_EXISTS");
  await ctx.audit.record({ type: "passkey_added", userId: user.id, meta: input.meta, data: { passkeyId: row.id } });
  await notifySignInMethodChanged(ctx, user, { method: "passkey", change: "added", name: row.name });
  return summary(row);
}

/**
 * A stable, fake credential id for an email without passkeys, so that the options for a known and an unknown
 * email look alike and the route does not tell which emails are registered.
 */
async function decoyCredentialId(ctx: AuthContext, email: string): Promise<string> {
  const key = ctx.secrets.get("passkey-decoy");
  return createHmac("sha256", await key).update(email).digest().subarray(0, 16).toString("base64url");
}

/**
 * Options for navigator.credentials.get(). Without an email the browser offers its discoverable passkeys; with one,
 * the account's passkeys are listed. The challenge lives under a random challengeId for 5 minutes and works once.
 */
export async function loginOptions(
  ctx: AuthContext,
  email: string | undefined,
): Promise<{ challengeId: string; options: PublicKeyCredentialRequestOptionsJSON }> {
  let userId: string | null = null;
  let allowCredentials: { id: string; transports?: string[] }[] | undefined;
  if (email) {
    const user = await ctx.users.findByEmail(email);
    const owned = user ? await ctx.db.select().from(passkeys).where(eq(passkeys.userId, user.id)) : [];
    userId = user?.id ?? null;
    allowCredentials =
      owned.length > 0
        ? owned.map((p) => ({ id: p.credentialId, transports: p.transports ?? undefined }))
        : [{ id: await decoyCredentialId(ctx, email), transports: ["internal", "hybrid"] }];
  }
  const options = await (await webauthn()).generateAuthenticationOptions({
    rpID: ctx.config.webauthn.rpId,
    allowCredentials,
    timeout: CHALLENGE_TTL_S * 1000,
    // A passkey sign-in replaces password and second factor at once, so the authenticator must verify the user.
    userVerification: "required",
  });
  const challengeId = randomToken();
  const stored: LoginChallenge = { challenge: options.challenge, userId };
  await ctx.kv.set(loginKey(challengeId), JSON.stringify(stored), CHALLENGE_TTL_S);
  return { challengeId, options };
}

/**
 * Signs in with a passkey. A verified user (UV flag) makes this a full sign-in: it skips the MFA challenge.
 * The signature counter must move forward (unless the authenticator keeps none, i.e. both are 0: the library
 * refuses anything else) and is stored with a compare-and-set, so a cloned authenticator cannot slip in between.
 */
export async function loginWithPasskey(
  ctx: AuthContext,
  input: { challengeId: string; response: AuthenticationResponseJSON; meta: RequestMeta },
): Promise<TokenResponse> {
  const userId = await verifyPasskeyAssertion(ctx, input);
  const user = await ctx.users.findById(userId);
  if (!user) {
    await ctx.audit.record({ type: "sign_in_failed", userId: null, meta: input.meta, data: { method: "passkey", reason: "unknown_user" } });
    throw passkeyRefused();
  }
  return ctx.startSession(user, { amr: ["passkey"], meta: input.meta, method: "passkey" });
}

/**
 * Checks a passkey assertion against its one-time challenge, with user verification, and moves the passkey's counter
 * on; answers the id of the user whose passkey it is. Used by sign-in and by POST /auth/reauth.
 */
export async function verifyPasskeyAssertion(
  ctx: AuthContext,
  input: { challengeId: string; response: AuthenticationResponseJSON; meta: RequestMeta },
): Promise<string> {
  const { meta } = input;
  await ctx.rateLimit.hit("RATE_LIMIT_LOGIN_IP", meta.ip ?? "unknown");
  const raw = await ctx.kv.getDel(loginKey(input.challengeId));
  if (!raw) throw mfaError("INVALID_CHALLENGE");
  const challenge = JSON.parse(raw) as LoginChallenge;
  const refuse = async (reason: string, userId: string | null = null) => {
    await ctx.audit.record({ type: "sign_in_failed", userId, meta, data: { method: "passkey", reason } });
    await ctx.events.emit(ctx.db, { type: "user.sign_in_failed", data: { email: null, userId, method: "passkey", ip: meta.ip } });
    return passkeyRefused();
  };

  const [passkey] = await ctx.db.select().from(passkeys).where(eq(passkeys.credentialId, input.response.id)).limit(1);
  if (!passkey || (challenge.userId !== null && passkey.userId !== challenge.userId)) throw await refuse("unknown_credential");
  const { rpId, origin } = ctx.config.webauthn;
  const verification = await (await webauthn()).verifyAuthenticationResponse({
    response: input.response,
    expectedChallenge: challenge.challenge,
    expectedOrigin: origin,
    expectedRPID: rpId,
    credential: {
      id: passkey.credentialId,
      publicKey: new Uint8Array(Buffer.from(passkey.publicKey, "base64url")),
      counter: passkey.counter,
      transports: passkey.transports ?? undefined,
    },
    requireUserVerification: false,
  }).catch(() => null);
  if (!verification?.verified) throw await refuse("invalid_assertion", passkey.userId);
  const { newCounter, userVerified } = verification.authenticationInfo;
  if (!userVerified) throw await refuse("no_user_verification", passkey.userId);

  const advanced = await ctx.db
    .update(passkeys)
    .set({ counter: newCounter, lastUsedAt: ctx.clock.now() })
    // Compare-and-set on the counter just verified against: of two concurrent uses, one moves it.
    .where(and(eq(passkeys.id, passkey.id), eq(passkeys.counter, passkey.counter)))
    .returning({ id: passkeys.id });
  if (advanced.length === 0) throw await refuse("counter", passkey.userId);
  return passkey.userId;
}

export async function listPasskeys(ctx: AuthContext, userId: string): Promise<PasskeySummary[]> {
  const rows = await ctx.db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt), asc(passkeys.id));
  return rows.map(summary);
}

/** Renames one of the caller's passkeys (a label for the owner; not a way in, so no step-up); anyone else's is 404. */
export async function renamePasskey(ctx: AuthContext, userId: string, passkeyId: string, name: string): Promise<PasskeySummary> {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > 64) throw errors.validation([{ path: "name", message: "must be 1 to 64 characters" }]);
  if (!isUuid(passkeyId)) throw errors.notFound("Passkey not found");
  const [row] = await ctx.db
    .update(passkeys)
    .set({ name: trimmed })
    .where(and(eq(passkeys.id, passkeyId), eq(passkeys.userId, userId)))
    .returning();
  if (!row) throw errors.notFound("Passkey not found");
  return summary(row);
}

/** Deletes one of the caller's passkeys; anyone else's (or an unknown id) is 404, the same answer. */
export async function deletePasskey(ctx: AuthContext, userId: string, passkeyId: string, meta: RequestMeta): Promise<void> {
  if (!isUuid(passkeyId)) throw errors.notFound("Passkey not found");
  const deleted = await ctx.events.atomic(async (tx) => {
    const gone = await tx
      .delete(passkeys)
      .where(and(eq(passkeys.id, passkeyId), eq(passkeys.userId, userId)))
      .returning({ id: passkeys.id, name: passkeys.name });
    await ctx.events.emit(tx, ...gone.map(() => ({ type: "passkey.removed" as const, data: { userId, passkeyId } })));
    return gone;
  });
  const [removed] = deleted;
  if (!removed) throw errors.notFound("Passkey not found");
  await ctx.audit.record({ type: "passkey_removed", userId, meta, data: { passkeyId } });
  const owner = await ctx.users.findById(userId);
  if (owner) await notifySignInMethodChanged(ctx, owner, { method: "passkey", change: "removed", name: removed.name });
}
