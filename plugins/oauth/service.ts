import { and, asc, count, eq } from "drizzle-orm";
import { z } from "zod";
import type { Config } from "../../src/config";
import type { AuthContext, SignInResult } from "../../src/context";
import { newId, randomToken, sha256 } from "../../src/crypto";
import type { Db } from "../../src/db";
import { type UserRow, users } from "../../src/db/schema";
import { AuthError, describeError, errors, isConnectionError } from "../../src/errors";
import { notifySignInMethodChanged } from "../../src/notices";
import type { RequestMeta } from "../../src/request";
import { countSignInMethods } from "../../src/credentials";
import type { AuthInfo } from "../../src/sessions/service";
import { violatedUniqueConstraint } from "../../src/users";
import { clearedBrowserBinding, FLOW_TTL_S, isSameBrowser, newBrowserBinding } from "./browser-binding";
import { isOidcProvider, loadArctic, type OAuthProfile, type OAuthProvider, type ProviderCredential, oauthErrors } from "./providers";
import { oauthError } from "./errors";
import { oauthAccounts } from "./schema";

/** The code handed to the app's page is swapped for tokens at once; 60 s covers a slow page load. */
const EXCHANGE_CODE_TTL_S = 60;
/** Every OAuth sign-in session says so in its authentication method references. */
export const OAUTH_AMR = ["oauth"];

export type SignInMode = "signin" | "signup" | "auto";

export const oauthFlowErrors = {
  untrustedRedirect: () => oauthError("UNTRUSTED_REDIRECT"),
  invalidState: () => oauthError("INVALID_STATE"),
  otherBrowser: () => oauthError("BROWSER_MISMATCH"),
  accessDenied: () => oauthError("ACCESS_DENIED"),
  accountExists: () => oauthError("ACCOUNT_EXISTS"),
  signupRequired: () => oauthError("SIGNUP_REQUIRED"),
  identityInUse: () => oauthError("IDENTITY_IN_USE"),
  providerAlreadyLinked: () => oauthError("PROVIDER_ALREADY_LINKED"),
  lastSignInMethod: () => oauthError("LAST_SIGN_IN_METHOD"),
  notLinked: () => errors.notFound("This provider is not linked to the account"),
};

/** What a redirect flow remembers under its state, consumed once by the callback. */
const flowSchema = z.object({
  provider: z.string(),
  codeVerifier: z.string(),
  nonce: z.string().optional(),
  redirectTo: z.string(),
  linkUserId: z.string().optional(),
  guestUserId: z.string().optional(),
  /** The hash of the secret in the starting browser's flow cookie (browser-binding.ts). */
  browserHash: z.string(),
});
type Flow = z.infer<typeof flowSchema>;

const exchangeSchema = z.object({ userId: z.string() });

const stateKey = (state: string) => `oauth:state:${sha256(state)}`;
const exchangeKey = (code: string) => `oauth:exchange:${sha256(code)}`;

/**
 * Checks a redirect target against TRUSTED_REDIRECT_ORIGINS: an absolute http(s) URL whose scheme, host and port
 * equal a trusted origin's. Refused before parsing: backslashes and control characters (browsers read `\` as `/`,
 * which WHATWG parsing would hide from us), scheme-relative `//host` and any other scheme; after parsing: userinfo.
 */
export function trustedRedirect(config: Config, raw: string | undefined): string {
  if (raw === undefined) return config.APP_URL;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (!/^https?:\/\//i.test(raw) || /[\\\s\u0000-\u001f\u007f]/.test(raw)) throw oauthFlowErrors.untrustedRedirect();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw oauthFlowErrors.untrustedRedirect();
  }
  if (url.username || url.password || !config.trustedRedirectOrigins.includes(url.origin)) throw oauthFlowErrors.untrustedRedirect();
  return url.toString();
}

function ownPageUrl(config: Config, path: string): string {
  if (!path.startsWith("/") || path.startsWith("//")) throw oauthFlowErrors.untrustedRedirect();
  return new URL(path, config.publicUrl).toString();
}

/** The callback URL registered with every provider: on this server as browsers reach it, wherever the app lives. */
export function callbackUrl(config: Config, providerId: string): string {
  return `${config.publicUrl}${config.AUTH_BASE_PATH}/oauth/${providerId}/callback`;
}

function providerOf(providers: Map<string, OAuthProvider>, id: string): OAuthProvider {
  const provider = providers.get(id);
  if (!provider) throw oauthErrors.providerNotFound();
  return provider;
}

export type StartedFlow = { url: string; cookie: string };

/**
 * Starts a redirect flow: remembers it under a fresh state and answers the provider's authorization URL, with the
 * cookie that binds the flow to this browser (its answer must set it).
 */
export async function startFlow(
  ctx: AuthContext,
  providers: Map<string, OAuthProvider>,
  input: { providerId: string; redirectTo: string | undefined; auth: AuthInfo | null; link: boolean; ownPage?: string },
): Promise<StartedFlow> {
  const provider = providerOf(providers, input.providerId);
  // `ownPage`: a hosted page of this server (PUBLIC_URL) that finishes the flow, trusted whatever TRUSTED_REDIRECT_ORIGINS says.
  const redirectTo = input.ownPage !== undefined ? ownPageUrl(ctx.config, input.ownPage) : trustedRedirect(ctx.config, input.redirectTo);
  const caller = input.auth ? await ctx.users.findById(input.auth.userId) : undefined;
  if (input.link && !caller) throw errors.unauthorized();
  const binding = newBrowserBinding(ctx.config, provider.id);
  const { generateCodeVerifier, generateState } = await loadArctic();
  const flow: Flow = {
    provider: provider.id,
    codeVerifier: generateCodeVerifier(),
    nonce: provider.usesNonce ? generateState() : undefined,
    redirectTo,
    // A guest "linking" a provider is a guest signing up with it: upgrade in place rather than link to a guest.
    linkUserId: input.link && !caller?.isAnonymous ? caller?.id : undefined,
    guestUserId: caller?.isAnonymous ? caller.id : undefined,
    browserHash: binding.secretHash,
  };
  const state = generateState();
  const url = await provider.authorizationUrl({
    redirectUri: callbackUrl(ctx.config, provider.id),
    state,
    codeVerifier: flow.codeVerifier,
    nonce: flow.nonce,
  });
  await ctx.kv.set(stateKey(state), JSON.stringify(flow), FLOW_TTL_S);
  return { url, cookie: binding.cookie };
}

export type CallbackQuery = { code?: string; state?: string; error?: string; iss?: string };

function withParams(base: string, params: Record<string, string>): string {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

/**
 * Finishes a redirect flow and answers where to send the browser: `redirectTo?code=` (a one-time exchange code,
 * never tokens), `redirectTo?linked=<provider>` for a link flow, or `redirectTo?error=<CODE>`.
 * An unknown, spent or expired state names no `redirectTo`, so that browser goes to `APP_URL` (the default) instead.
 * A browser without the flow's cookie (another than the one that started it) gets `error=BROWSER_MISMATCH` before
 * the provider's code is redeemed: nobody is signed in, linked or upgraded.
 */
export async function finishFlow(
  ctx: AuthContext,
  providers: Map<string, OAuthProvider>,
  input: { providerId: string; query: CallbackQuery; cookieHeader: string | null; meta: RequestMeta },
): Promise<{ location: string; cookie: string }> {
  const location = await finishedFlowLocation(ctx, providers, input);
  return { location, cookie: clearedBrowserBinding(ctx.config, input.providerId) };
}

async function finishedFlowLocation(
  ctx: AuthContext,
  providers: Map<string, OAuthProvider>,
  input: { providerId: string; query: CallbackQuery; cookieHeader: string | null; meta: RequestMeta },
): Promise<string> {
  const { query, meta } = input;
  const stored = query.state ? await ctx.kv.getDel(stateKey(query.state)) : null;
  const parsed = stored ? flowSchema.safeParse(JSON.parse(stored)) : null;
  if (!parsed?.success) return withParams(ctx.config.APP_URL, { error: oauthFlowErrors.invalidState().code });
  const flow = parsed.data;
  try {
    if (flow.provider !== input.providerId) throw oauthFlowErrors.invalidState();
    if (!isSameBrowser(ctx.config, input.cookieHeader, flow.browserHash)) throw oauthFlowErrors.otherBrowser();
    if (query.error) throw query.error === "access_denied" ? oauthFlowErrors.accessDenied() : oauthErrors.providerError();
    if (!query.code) throw oauthErrors.providerError();
    const provider = providerOf(providers, flow.provider);
    // RFC 9207: an `iss` parameter naming another issuer means the response was meant for another provider (mix-up).
    if (query.iss !== undefined && isOidcProvider(provider) && query.iss !== (await provider.expectedIssuer())) throw oauthErrors.providerError();
    const tokens = await provider.exchangeCode({ code: query.code, codeVerifier: flow.codeVerifier, redirectUri: callbackUrl(ctx.config, provider.id) });
    const profile = await provider.profileFromTokens(tokens, flow.nonce);
    if (flow.linkUserId) {
      await linkIdentity(ctx, flow.linkUserId, provider.id, profile, meta);
      return withParams(flow.redirectTo, { linked: provider.id });
    }
    // An account made here stays if the exchange's sign-in fails: that is a later request, and the next flow signs in to it.
    const { user } = await resolveUser(ctx, provider.id, profile, { mode: "auto", guestUserId: flow.guestUserId, meta });
    // The guest is upgraded only because this browser proved it started the flow the guest's token opened. Its
    // earlier sessions still end (a token copied elsewhere keeps nothing); the exchange code hands the upgraded
    // account (same id, same data, same credentials) a fresh session.
    if (user.id === flow.guestUserId) await ctx.sessions.revokeAll(user.id, undefined, "guest_upgraded");
    const code = randomToken();
    await ctx.kv.set(exchangeKey(code), JSON.stringify({ userId: user.id }), EXCHANGE_CODE_TTL_S);
    return withParams(flow.redirectTo, { code });
  } catch (error) {
    const code = error instanceof AuthError ? error.code : isConnectionError(error) ? "UNAVAILABLE" : "INTERNAL_ERROR";
    if (!(error instanceof AuthError)) ctx.logger.error("oauth callback failed", { error: describeError(error) });
    // The browser must still get its redirect when the audit write fails too (e.g. the database is down).
    await ctx.audit
      .record({ type: "sign_in_failed", userId: flow.linkUserId ?? null, meta, data: { method: "oauth", provider: flow.provider, reason: code } })
      .catch(() => undefined);
    return withParams(flow.redirectTo, { error: code });
  }
}

/** Swaps a one-time exchange code for a session (or an MFA challenge). */
export async function redeemExchangeCode(ctx: AuthContext, code: string, meta: RequestMeta): Promise<SignInResult> {
  const stored = await ctx.kv.getDel(exchangeKey(code));
  const parsed = stored ? exchangeSchema.safeParse(JSON.parse(stored)) : null;
  const user = parsed?.success ? await ctx.users.findById(parsed.data.userId) : undefined;
  if (!user) throw errors.invalidCode();
  return ctx.signIn(user, { amr: OAUTH_AMR, meta, method: "oauth" });
}

/** Signs in with a credential a client got from the provider's SDK (ID token or access token). */
export async function signInWithCredential(
  ctx: AuthContext,
  providers: Map<string, OAuthProvider>,
  input: { providerId: string; credential: ProviderCredential; mode: SignInMode; auth: AuthInfo | null; meta: RequestMeta },
): Promise<SignInResult> {
  await ctx.rateLimit.hit("RATE_LIMIT_LOGIN_IP", input.meta.ip ?? "unknown");
  const provider = providerOf(providers, input.providerId);
  const profile = await provider.profileFromCredential(input.credential);
  const caller = input.auth ? await ctx.users.findById(input.auth.userId) : undefined;
  const { user, madeNow } = await resolveUser(ctx, provider.id, profile, {
    mode: input.mode,
    guestUserId: caller?.isAnonymous ? caller.id : undefined,
    meta: input.meta,
  });
  return ctx.signIn(user, { amr: OAUTH_AMR, meta: input.meta, method: "oauth", madeNow });
}

async function findLink(db: Db, provider: string, providerAccountId: string) {
  const [row] = await db
    .select()
    .from(oauthAccounts)
    .where(and(eq(oauthAccounts.provider, provider), eq(oauthAccounts.providerAccountId, providerAccountId)))
    .limit(1);
  return row;
}

async function insertLink(db: Db, userId: string, provider: string, profile: OAuthProfile): Promise<void> {
  await db.insert(oauthAccounts).values({ id: newId(), userId, provider, providerAccountId: profile.providerAccountId, email: profile.email });
}

/** Turns a failed link insert into the contract's 409s; anything else is rethrown as is. */
function linkConflict(error: unknown): AuthError | undefined {
  if (error instanceof AuthError) return error.code === "EMAIL_TAKEN" ? oauthFlowErrors.accountExists() : undefined;
  const constraint = violatedUniqueConstraint(error);
  if (constraint?.includes("oauth_accounts_user_provider_key")) return oauthFlowErrors.providerAlreadyLinked();
  if (constraint?.includes("oauth_accounts_provider_key")) return oauthFlowErrors.identityInUse();
  return undefined;
}

/**
 * Finds or makes the account an identity signs in to:
 * 1. an identity already linked signs in its user;
 * 2. a local account with the same email gets linked only when both the provider and we have verified that email
 *    (else anyone controlling an unverified address at some provider could take over the account): 409 ACCOUNT_EXISTS;
 * 3. otherwise a guest who started the flow is upgraded in place, or a new account is made.
 * `signup` refuses 1 and 2 with ACCOUNT_EXISTS; `signin` refuses 3 with SIGNUP_REQUIRED.
 */
async function resolveUser(
  ctx: AuthContext,
  providerId: string,
  profile: OAuthProfile,
  opts: { mode: SignInMode; guestUserId?: string; meta: RequestMeta },
): Promise<{ user: UserRow; madeNow: boolean }> {
  const linked = await findLink(ctx.db, providerId, profile.providerAccountId);
  const linkedUser = linked ? await ctx.users.findById(linked.userId) : undefined;
  if (linkedUser) {
    if (opts.mode === "signup") throw oauthFlowErrors.accountExists();
    return { user: linkedUser, madeNow: false };
  }
  const local = profile.email ? await ctx.users.findByEmail(profile.email) : undefined;
  if (local) {
    if (opts.mode === "signup" || !(profile.emailVerified && local.emailVerified)) throw oauthFlowErrors.accountExists();
    await linkIdentity(ctx, local.id, providerId, profile, opts.meta).catch((error: unknown) => {
      // The account holds another identity of this provider: a sign-in with this one is refused as any other account
      // of the email is (409 ACCOUNT_EXISTS), not with the link flows' code.
      throw error instanceof AuthError && error.code === "PROVIDER_ALREADY_LINKED" ? oauthFlowErrors.accountExists() : error;
    });
    return { user: local, madeNow: false };
  }
  if (opts.mode === "signin") throw oauthFlowErrors.signupRequired();

  const fields = {
    email: profile.email,
    emailVerified: profile.email !== null && profile.emailVerified,
    firstName: profile.firstName,
    lastName: profile.lastName,
    image: profile.image,
  };
  const { guestUserId } = opts;
  await ctx.beforeSignUp({ email: profile.email, method: `oauth:${providerId}`, ip: opts.meta.ip, userAgent: opts.meta.userAgent });
  try {
    const user = await ctx.db.transaction(async (txn) => {
      const tx = txn as unknown as Db;
      const row = guestUserId ? await ctx.users.upgradeGuest(guestUserId, fields, tx) : await ctx.users.create(fields, tx);
      await insertLink(tx, row.id, providerId, profile);
      // A guest's account was announced when it was made: its upgrade is an update of it.
      await ctx.events.emit(
        tx,
        { type: guestUserId ? "user.updated" : "user.created", data: { user: ctx.users.toPublic(row) } },
        { type: "account.linked", data: { userId: row.id, provider: providerId } },
      );
      return row;
    });
    await ctx.audit.record({
      type: guestUserId ? "guest_upgraded" : "sign_up",
      userId: user.id,
      meta: opts.meta,
      data: { method: "oauth", provider: providerId },
    });
    // A guest upgraded in place existed before: it is never made now.
    return { user, madeNow: !guestUserId };
  } catch (error) {
    const conflict = linkConflict(error);
    if (!conflict) throw error;
    // Two first sign-ins of one identity raced: the other one made the account, so this one signs in to it.
    const raced = await findLink(ctx.db, providerId, profile.providerAccountId);
    const racedUser = raced ? await ctx.users.findById(raced.userId) : undefined;
    if (!racedUser) throw conflict;
    if (opts.mode === "signup") throw oauthFlowErrors.accountExists();
    return { user: racedUser, madeNow: false };
  }
}

/** Links an identity to a user; linking one already linked to this user is a no-op. */
async function linkIdentity(ctx: AuthContext, userId: string, providerId: string, profile: OAuthProfile, meta: RequestMeta): Promise<void> {
  const linked = await findLink(ctx.db, providerId, profile.providerAccountId);
  if (linked) {
    if (linked.userId !== userId) throw oauthFlowErrors.identityInUse();
    return;
  }
  const owner = await ctx.users.findById(userId);
  if (!owner) throw errors.unauthorized();
  try {
    await ctx.events.atomic(async (tx) => {
      await insertLink(tx, userId, providerId, profile);
      await ctx.events.emit(tx, { type: "account.linked", data: { userId, provider: providerId } });
    });
  } catch (error) {
    throw linkConflict(error) ?? error;
  }
  await ctx.audit.record({ type: "oauth_linked", userId, meta, data: { provider: providerId } });
  await notifySignInMethodChanged(ctx, owner, { method: "provider", change: "added", name: providerId });
}

export type LinkedAccount = { provider: string; providerAccountId: string; email: string | null; createdAt: string };

export async function listAccounts(ctx: AuthContext, userId: string): Promise<LinkedAccount[]> {
  const rows = await ctx.db
    .select({
      provider: oauthAccounts.provider,
      providerAccountId: oauthAccounts.providerAccountId,
      email: oauthAccounts.email,
      createdAt: oauthAccounts.createdAt,
    })
    .from(oauthAccounts)
    .where(eq(oauthAccounts.userId, userId))
    .orderBy(asc(oauthAccounts.createdAt));
  return rows.map((row) => ({ ...row, createdAt: row.createdAt.toISOString() }));
}

/**
 * Unlinks a provider unless it is the account's last way in, counted over every enabled plugin's credentials.
 * The user row is locked so two unlinks of the last two providers cannot both pass the check.
 */
export async function unlinkAccount(ctx: AuthContext, userId: string, providerId: string, meta: RequestMeta): Promise<void> {
  const owner = await ctx.db.transaction(async (tx) => {
    const [user] = await tx.select({ id: users.id, email: users.email }).from(users).where(eq(users.id, userId)).for("update");
    if (!user) throw errors.unauthorized();
    const [link] = await tx
      .select({ id: oauthAccounts.id })
      .from(oauthAccounts)
      .where(and(eq(oauthAccounts.userId, userId), eq(oauthAccounts.provider, providerId)));
    if (!link) throw oauthFlowErrors.notLinked();
    // The link being removed is one of them: it may go only if another way in remains.
    if ((await countSignInMethods(ctx, userId, tx)) <= 1) throw oauthFlowErrors.lastSignInMethod();
    await tx.delete(oauthAccounts).where(eq(oauthAccounts.id, link.id));
    await ctx.events.emit(tx as unknown as Db, { type: "account.unlinked", data: { userId, provider: providerId } });
    return user;
  });
  await ctx.audit.record({ type: "oauth_unlinked", userId, meta, data: { provider: providerId } });
  await notifySignInMethodChanged(ctx, owner, { method: "provider", change: "removed", name: providerId });
}

/** Each linked provider identity is a way into the account. */
export async function countLinks(userId: string, db: Db): Promise<number> {
  const [row] = await db.select({ n: count() }).from(oauthAccounts).where(eq(oauthAccounts.userId, userId));
  return row?.n ?? 0;
}

/** Unlinks every provider identity of a user (an unverified account's mailbox was just proven); answers how many. */
export async function unlinkAll(userId: string, db: Db): Promise<number> {
  const unlinked = await db.delete(oauthAccounts).where(eq(oauthAccounts.userId, userId)).returning({ id: oauthAccounts.id });
  return unlinked.length;
}
