import { Elysia } from "elysia";
import { z } from "zod";
import { AuditLog } from "./audit";
import { bodyParser } from "./body";
import { OneTimeCodes } from "./codes";
import { type AuthServerOptions, type Config, loadConfig } from "./config";
import { type Clock, systemClock } from "./clock";
import type { AuthContext, Hooks, SignInOptions } from "./context";
import { coreRoutes } from "./core-routes";
import { corsPolicy } from "./cors";
import { newId } from "./crypto";
import { type Database, openDatabase } from "./db";
import type { UserRow } from "./db/schema";
import { docs } from "./docs";
import { KnownDevices } from "./devices";
import { describeError, errorHandler, errors, isConnectionError } from "./errors";
import { Events } from "./events";
import { type AuthHooks, claimsHook } from "./hooks";
import { type KeyValueStore, openStore } from "./kv";
import { createLogger, type Logger } from "./logger";
import { createMailer, type Mailer, sendEmailDetached } from "./mail";
import { OutboxMailer } from "./mail/outbox";
import { healthRoutes, type Lifecycle, trackRequests } from "./health";
import { observability } from "./observability";
import { listErrorCodes } from "./openapi-errors";
import { PasswordHasher } from "./passwords";
import { installPlugins } from "./plugin";
import { allPluginRoutes, DEPENDENCIES, ERROR_REGISTRY, HOSTED_PAGES, PLUGINS } from "./plugins";
import { RateLimiter } from "./rate-limit";
import { coreRetention } from "./retention";
import { browserSessions } from "./sessions/cookies";
import { Sessions } from "./sessions/service";
import { AccessTokens } from "./tokens/access";
import { ServerSecrets } from "./tokens/keys";
import { rotateSigningKeys } from "./tokens/rotation";
import { ownedPaths } from "./scope";
import { KeptBanned, Users } from "./users";

export type { AuthServerOptions } from "./config";
export type { AuthContext } from "./context";
export { AuthError } from "./errors";
export type { AuthHooks, SessionInfo, SignUpAttempt } from "./hooks";

/** Ports a host app or a test can hand in instead of the ones made from settings, and the app's in-process hooks. */
export type AuthServerPorts = { database?: Database; kv?: KeyValueStore; mailer?: Mailer; clock?: Clock; logger?: Logger; hooks?: AuthHooks };

const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

const MAINTENANCE_INTERVAL_MS = 15 * 60 * 1000;

/** Whether the store answers within `timeoutMs`; it may still be connecting, so it is asked again until then. */
async function reachable(kv: KeyValueStore, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await kv.ping().then(() => true, () => false)) return true;
    if (Date.now() >= deadline) return false;
    await Bun.sleep(50);
  }
}

/**
 * The mailer MAIL_TRANSPORT names. SMTP goes through the durable outbox (an SMTP outage loses no mail); the console
 * prints at once. A mailer handed in as a port (a host app's, a test's) is used as it is.
 */
function mailerFromSettings(config: Config, ports: ConstructorParameters<typeof OutboxMailer>[1]): Mailer {
  if (config.mailTransport === "console") {
    ports.logger.warn("MAIL_TRANSPORT=console: mails, their codes and links included, are written to this log at info; set SMTP_URL to send them");
    return createMailer({ from: config.MAIL_FROM, transport: "console", logger: ports.logger });
  }
  ports.logger.info("MAIL_TRANSPORT=smtp: mails leave through SMTP_URL, by the mail_outbox table");
  const outbox = new OutboxMailer(createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, transport: "smtp" }), ports);
  outbox.start();
  return outbox;
}

/** JWT_KEY_ROTATION_DAYS as a maintenance task: every instance runs it, one rotation wins (src/tokens/rotation.ts). */
function scheduledKeyRotation(config: Config, db: Database["db"], clock: Clock, logger: Logger): Hooks["maintenance"] {
  if (config.JWT_ALG !== "EdDSA" || config.JWT_KEY_ROTATION_DAYS === 0) return [];
  const olderThanMs = config.JWT_KEY_ROTATION_DAYS * 86_400_000;
  return [
    async () => {
      const rotated = await rotateSigningKeys(db, { now: clock.now(), olderThanMs });
      if (rotated) logger.info("signing key rotated", { kid: rotated.kid, signsFrom: rotated.signsFrom });
    },
  ];
}

async function buildContext(config: Config, ports: AuthServerPorts, logger: Logger): Promise<AuthContext> {
  // First: a claims hook that returns a reserved name stops the start before anything is opened.
  const appHooks = ports.hooks ?? {};
  const extraClaims = await claimsHook(appHooks);
  const clock = ports.clock ?? systemClock;
  const database =
    ports.database ?? (await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, timeoutMs: config.BACKEND_TIMEOUT_MS }));
  try {
    await database.migrate();
  } catch (error) {
    // At start the only thing that can fail is the connection or the schema: say which setting leads there.
    if (config.DATABASE_URL && isConnectionError(error)) throw new Error(`cannot reach the database at DATABASE_URL (${describeError(error)})`);
    throw error;
  }
  const kv = ports.kv ?? (await openStore({ url: config.REDIS_URL, timeoutMs: config.BACKEND_TIMEOUT_MS, prefix: config.KV_PREFIX, now: () => clock.now().getTime() }));
  if (!ports.kv && config.REDIS_URL) {
    // A server that starts without its Redis answers every request 503 with no cause in sight: refuse to start instead.
    const reached = await reachable(kv, config.BACKEND_TIMEOUT_MS);
    if (!reached) {
      await kv.close();
      throw new Error(`cannot reach Redis at REDIS_URL (no answer within BACKEND_TIMEOUT_MS=${config.BACKEND_TIMEOUT_MS})`);
    }
  }
  if (kv.kind === "memory") logger.warn("REDIS_URL is unset: using an in-memory store, good for one instance only");
  const db = database.db;
  const now = () => clock.now();
  const tokens = new AccessTokens(config, db, clock);
  await tokens.init();
  const audit = new AuditLog(db);
  const rateLimit = new RateLimiter(kv, config);
  const events = new Events(db, now);
  const users = new Users(db, config, events);
  const secrets = new ServerSecrets(db, config.encryptionKeys);
  await secrets.init();
  const mailer = ports.mailer ?? mailerFromSettings(config, { db, secrets, clock, logger });
  const sessions = new Sessions({ db, kv, config, tokens, secrets, users, audit, clock, events, logger });
  sessions.extraClaims = extraClaims;
  const hooks: Hooks = {
    maintenance: [() => sessions.deleteExpiredRevocations().then(() => {}), ...scheduledKeyRotation(config, db, clock, logger)],
    credentials: [],
    rightsChanged: [],
    shutdown: [],
    selfDeletion: [],
    reauthFactors: [],
    reseal: [],
  };
  const devices = new KnownDevices(kv, db, config.SESSION_MAX_AGE_S, now);
  const openSession: AuthContext["startSession"] = async (user, { amr, meta, method, factor, stillValid, madeNow }) => {
    if (users.isBanned(user, now())) throw errors.userBanned();
    const newDevice = user.email !== null && (await devices.isNewFor(user, meta, madeNow));
    const sessionId = newId();
    const session = { id: sessionId, amr, ip: meta.ip, userAgent: meta.userAgent };
    const response = await sessions.create(user, {
      amr,
      meta,
      sessionId,
      inTransaction: (tx, made) => events.emit(tx, { type: "user.signed_in", data: { user: made.user, session } }),
    });
    const current = await users.markSignedIn(user.id, now());
    // A ban that landed while this sign-in ran: the session it revoked did not exist yet, so end this one here.
    if (current.banned) {
      await sessions.revoke(sessionId, "banned");
      throw errors.userBanned();
    }
    // Asked of the row as it is once the session exists: a change that landed before is seen here, one that lands
    // after it (a password reset revoking every session) already finds this session to revoke.
    if (stillValid && !stillValid(current)) {
      await sessions.revoke(sessionId, "credential_changed");
      throw errors.invalidCredentials();
    }
    try {
      await appHooks.afterSignIn?.(response.user, session);
    } catch (error) {
      await sessions.revoke(sessionId, "sign_in_refused");
      throw error;
    }
    await audit.record({ type: "sign_in", userId: user.id, meta, data: factor ? { method, factor } : { method } });
    if (newDevice) await sendEmailDetached({ mailer, logger, config }, user.email, "new-sign-in", { ip: meta.ip, userAgent: meta.userAgent, at: now().toISOString() });
    return response;
  };
  const undoSignUp = async (user: UserRow, { meta, method, giveBack }: SignInOptions) => {
    try {
      await sessions.deleteUser(user.id, users.keepIfBanned(user.id));
      await giveBack?.();
      await audit.record({ type: "account_deleted", userId: user.id, meta, data: { method, reason: "sign_in_failed" } });
    } catch (error) {
      // An admin banned it while its sign-in ran: the account stays, with what its sign-up used.
      if (error instanceof KeptBanned) return;
      // The client is answered with the sign-in's own error; this one is the operator's, who may have an account to remove.
      logger.error("sign-up not undone after its sign-in failed", { userId: user.id, method, error: describeError(error) });
    }
  };
  // A sign-up whose sign-in fails (a hook threw) is undone: a kept account would answer the client's retry 409, or linger.
  const startSession: AuthContext["startSession"] = async (user, opts) => {
    if (!opts.madeNow) return openSession(user, opts);
    try {
      return await openSession(user, opts);
    } catch (error) {
      await undoSignUp(user, opts);
      throw error;
    }
  };
  const ctx: AuthContext = {
    id: crypto.randomUUID(),
    config,
    database,
    db,
    kv,
    mailer,
    clock,
    audit,
    rateLimit,
    codes: new OneTimeCodes(kv),
    users,
    sessions,
    tokens,
    secrets,
    passwords: new PasswordHasher(config),
    hooks,
    events,
    appHooks,
    async beforeSignUp(attempt) {
      await appHooks.beforeSignUp?.(attempt);
    },
    logger,
    async signIn(user, opts) {
      // Before the second step: a banned account gets no MFA challenge either.
      if (users.isBanned(user, now())) throw errors.userBanned();
      if (user.mfaEnabled && hooks.mfaChallenge) return hooks.mfaChallenge(user, opts);
      return startSession(user, opts);
    },
    startSession,
  };
  hooks.maintenance.push(coreRetention(ctx));
  return ctx;
}

/**
 * Every plugin's routes chained on the core's, so their types add up; never called with plugins that are off.
 * The base path's type is the default one: a client of a server with another AUTH_BASE_PATH sets it in its URL.
 */
function allRoutes(ctx: AuthContext) {
  return new Elysia({ name: "auth.routes", seed: ctx.id, prefix: "/auth" })
    .use(coreRoutes(ctx))
    .use(allPluginRoutes(ctx));
}

/**
 * The core and the plugins AUTH_PLUGINS turns on, under AUTH_BASE_PATH. Which plugins run is a runtime choice, so
 * the type holds them all (a route of a plugin that is off answers 404 NOT_FOUND): Eden clients see the whole API.
 */
function authRoutes(ctx: AuthContext): ReturnType<typeof allRoutes> {
  const auth = new Elysia({ name: "auth.routes", seed: ctx.id, prefix: ctx.config.AUTH_BASE_PATH })
    // A query parameter sent blank (`?cursor=&limit=`, as the contract writes them) is one not sent: its default holds.
    .onTransform(({ query }) => {
      for (const key of Object.keys(query)) if (query[key] === "") delete query[key];
    })
    .use(coreRoutes(ctx));
  // Hooks are installed before any route exists, and called only at request time, so plugin order is free.
  for (const routes of installPlugins(ctx, PLUGINS, ctx.config.plugins)) auth.use(routes);
  if (ctx.config.HOSTED_UI) auth.use(HOSTED_PAGES.routes(ctx));
  // Mounted in a host app, an unknown auth path (a disabled plugin's route) would otherwise get the host's 404.
  auth.all("/*", () => {
    throw errors.notFound();
  }, { detail: { hide: true } });
  return auth as unknown as ReturnType<typeof allRoutes>;
}

function buildApp(ctx: AuthContext, logger: Logger, lifecycle: Lifecycle = { draining: false, inFlight: 0 }) {
  const { config } = ctx;
  const owns = ownedPaths(config.AUTH_BASE_PATH);

  const securityHeaders = (set: { headers: Record<string, unknown> }) => {
    set.headers["x-content-type-options"] = "nosniff";
    set.headers["cache-control"] = "no-store";
    set.headers["referrer-policy"] = "no-referrer";
  };

  return new Elysia({ name: "auth.server", seed: ctx.id })
    // Before the error handler: its answer ends the error hooks, and an unknown path must carry these headers too.
    .use(observability(ctx, logger, owns))
    .onRequest(({ request, set }) => {
      if (owns(request.url)) securityHeaders(set);
    })
    // Local: an unknown path gets here only when this server is the root app, not when a host app mounts it.
    .onError(({ code, request, set }) => {
      if (code === "NOT_FOUND" && !owns(request.url)) securityHeaders(set);
    })
    .use(errorHandler(ctx.id, ({ error, path }) => logger.error("unexpected error", { path, error: describeError(error) })))
    .use(corsPolicy(ctx.id, config.corsOrigins, owns))
    .use(browserSessions(ctx.id, config, owns))
    .use(bodyParser(ctx.id, owns))
    // After the hooks that answer before routing (a preflight, a 413/415), whose answers skip every later hook.
    .use(trackRequests(ctx.id, lifecycle))
    .use(docs(ctx.id, config.AUTH_BASE_PATH, owns, (spec) => listErrorCodes(spec as Parameters<typeof listErrorCodes>[0], ERROR_REGISTRY, DEPENDENCIES)))
    .use(healthRoutes(ctx, lifecycle))
    .get("/.well-known/jwks.json", ({ set }) => {
      set.headers["cache-control"] = "public, max-age=300";
      return ctx.tokens.jwks();
    }, { response: { 200: jwksSchema }, detail: { summary: "Public keys of access tokens (EdDSA)", tags: ["core"] } })
    .use(HOSTED_PAGES.links(ctx))
    .use(authRoutes(ctx));
}

export type AuthServer = {
  app: ReturnType<typeof buildApp>;
  ctx: AuthContext;
  /** Set `draining` when shutting down: /health/ready answers 503 so that load balancers route new work elsewhere. */
  lifecycle: Lifecycle;
  close(): Promise<void>;
};

/** Builds the server and its context; `close()` releases the database, the KV store and the mailer. */
export async function buildAuthServer(
  options: AuthServerOptions | Record<string, string | undefined> = {},
  ports: AuthServerPorts = {},
): Promise<AuthServer> {
  const config = loadConfig(options);
  const logger = ports.logger ?? createLogger(config.LOG_LEVEL);
  const ctx = await buildContext(config, ports, logger);
  const lifecycle: Lifecycle = { draining: false, inFlight: 0 };
  const app = buildApp(ctx, logger, lifecycle);
  const maintenance = setInterval(() => {
    for (const task of ctx.hooks.maintenance) task().catch((error) => logger.warn("maintenance failed", { error: String(error) }));
  }, MAINTENANCE_INTERVAL_MS);
  maintenance.unref?.();
  return {
    app,
    ctx,
    lifecycle,
    async close() {
      clearInterval(maintenance);
      await Promise.allSettled(ctx.hooks.shutdown.map((stop) => stop()));
      ctx.sessions.close();
      // The mailer first: the outbox's sends in flight still write their result to the database.
      if (!ports.mailer) await ctx.mailer.close().catch(() => {});
      await Promise.allSettled([ports.kv ? Promise.resolve() : ctx.kv.close(), ports.database ? Promise.resolve() : ctx.database.close()]);
    },
  };
}

/** The auth server as an Elysia app, to `.listen()` or to `.use()` inside another Elysia app. */
export async function createAuthServer(options: AuthServerOptions = {}, ports: AuthServerPorts = {}) {
  return (await buildAuthServer(options, ports)).app;
}


/** The app's type, for Eden treaty clients: every route of every plugin, under `/auth`. */
export type App = AuthServer["app"];
