import pkg from "../package.json" with { type: "json" };
import { type Config, ConfigError, loadConfig } from "./config";
import { type Database, openDatabase } from "./db";
import { createLogger } from "./logger";
import { grantAdmin } from "./plugins";
import { buildAuthServer } from "./server";
import { ensureSigningKey } from "./tokens/keys";
import { rotateSigningKeys } from "./tokens/rotation";

export const USAGE = `auth-server ${pkg.version}: an authentication server

Usage: auth-server [command]

Commands:
  (none), serve              start the server (settings from the environment; see README.md)
  migrate                    apply the database migrations, then exit
  keys rotate                make a new JWT signing key: published at once, signing 10 minutes later; the old
                             one stays published and verifies until its tokens expire
  keys reencrypt             seal again with the first key of ENCRYPTION_KEYS what older keys sealed (TOTP secrets)
  users create-admin EMAIL   give EMAIL the admin role (a new account is mailed a set-password link)
  healthcheck                ask the running server's /health/ready on PORT; exit 0 when ready, else 1
  --help, -h                 this text
  --version, -v              the version

Settings are environment variables (README.md lists them); a wrong one stops with a line naming it.`;

/** Parses the settings, or prints the one line naming the wrong variable and exits. */
export function configOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** For distroless images (no curl): asks the running server whether it is ready. */
async function healthcheck(config: Config): Promise<number> {
  const host = config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST;
  try {
    const res = await fetch(`http://${host.includes(":") ? `[${host}]` : host}:${config.PORT}/health/ready`, { signal: AbortSignal.timeout(5000) });
    return res.ok ? 0 : 1;
  } catch {
    return 1;
  }
}

/** Runs `work` on the migrated database of the settings, then closes it. */
async function withDatabase(config: Config, work: (database: Database) => Promise<number>): Promise<number> {
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, timeoutMs: config.BACKEND_TIMEOUT_MS });
  try {
    await database.migrate();
    return await work(database);
  } finally {
    await database.close();
  }
}

const migrate = (config: Config) =>
  withDatabase(config, async (database) => {
    createLogger(config.LOG_LEVEL).info("migrated", { db: database.kind });
    return 0;
  });

function rotateKeys(config: Config, out: (text: string) => void): Promise<number> {
  if (config.JWT_ALG !== "EdDSA") {
    process.stderr.write("keys rotate: JWT_ALG=HS256 signs with JWT_SECRET, which the server does not rotate (changing it signs everyone out)\n");
    return Promise.resolve(1);
  }
  return withDatabase(config, async (database) => {
    await ensureSigningKey(database.db);
    const rotated = await rotateSigningKeys(database.db);
    if (!rotated) return 1;
    out(`new signing key ${rotated.kid}: published now, signs from ${rotated.signsFrom}; retiring ${rotated.retired.join(", ") || "none"}`);
    return 0;
  });
}

/** Runs `work` with a whole server context (no listening socket): the admin service needs users, audit and mail. */
async function withServer(work: (server: Awaited<ReturnType<typeof buildAuthServer>>) => Promise<number>): Promise<number> {
  const server = await buildAuthServer(process.env);
  try {
    return await work(server);
  } finally {
    await server.close();
  }
}

/**
 * Runs the command in `argv` (without the binary and script): answers the exit code, or null to start the server.
 * Unknown commands are an error, not a server start: `auth-server --hepl` must not start serving.
 */
export async function runCommand(argv: string[]): Promise<number | null> {
  const [command, ...rest] = argv;
  const out = (text: string) => process.stdout.write(`${text}\n`);
  if (command === undefined || command === "serve") return null;
  if (command === "--help" || command === "-h" || command === "help") {
    out(USAGE);
    return 0;
  }
  if (command === "--version" || command === "-v" || command === "version") {
    out(pkg.version);
    return 0;
  }
  if (command === "healthcheck" || command === "--healthcheck") return healthcheck(configOrExit());
  if (command === "migrate") return migrate(configOrExit());
  if (command === "keys" && rest[0] === "rotate") return rotateKeys(configOrExit(), out);
  if (command === "keys" && rest[0] === "reencrypt") {
    configOrExit();
    return withServer(async (server) => {
      let count = 0;
      for (const reseal of server.ctx.hooks.reseal) count += await reseal();
      out(`sealed again with the first key of the ring: ${count}`);
      return 0;
    });
  }
  if (command === "users" && rest[0] === "create-admin") {
    const email = rest[1];
    if (!email) {
      process.stderr.write("Usage: auth-server users create-admin EMAIL\n");
      return 2;
    }
    configOrExit();
    return withServer(async (server) => {
      const { user, created } = await grantAdmin(server.ctx, email);
      createLogger(server.ctx.config.LOG_LEVEL).info(created ? "admin created" : "admin granted", { userId: user.id });
      // The set-password mail of a new admin leaves after the answer: give it the time to go.
      await Bun.sleep(500);
      return 0;
    });
  }
  process.stderr.write(`Unknown command: ${argv.join(" ")}\n\n${USAGE}\n`);
  return 2;
}
