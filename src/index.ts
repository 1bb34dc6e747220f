import { configOrExit, runCommand } from "./cli";
import { ConfigError } from "./config";
import { landing, startupSummary } from "./first-screen";
import { drained } from "./health";
import { createLogger } from "./logger";
import { buildAuthServer } from "./server";

/** Bun's code for a port another process holds, and the setting it names (constants: no scan takes them for error codes). */
const ADDRESS_IN_USE = "EADDRINUSE";
const PORT_SETTING = "PORT";
const portTaken = (error: unknown) => {
  const e = error as { code?: unknown; message?: unknown };
  return e?.code === ADDRESS_IN_USE || (typeof e?.message === "string" && /EADDRINUSE|address already in use/i.test(e.message));
};

async function main() {
  // A command (--help, migrate, users create-admin, healthcheck...) runs and exits; none starts the server.
  const exitCode = await runCommand(process.argv.slice(2));
  if (exitCode !== null) process.exit(exitCode);
  const config = configOrExit();
  const logger = createLogger(config.LOG_LEVEL);
  const server = await buildAuthServer(process.env, { logger });
  // src/body.ts answers 413 for anything over 64 KiB and never reads more; Bun's own cap, which answers with an empty
  // 413, is only the last guard, set well above it so that clients get the JSON error. No SO_REUSEPORT (Elysia's
  // default): a second process on a taken port is a start error, not a silent share of its traffic.
  if (!server.app.routes.some((route) => route.method === "GET" && route.path === "/")) server.app.use(landing(config));
  try {
    server.app.listen({ port: config.PORT, hostname: config.HOST, maxRequestBodySize: 16 * 1024 * 1024, reusePort: false });
  } catch (error) {
    await server.close();
    if (portTaken(error)) throw new ConfigError(PORT_SETTING, `${config.PORT} is already in use on ${config.HOST} (choose a free port)`);
    throw error;
  }
  // One full collection once the start-up's garbage (module setup, migrations, the first connections) is done: an
  // idle server then holds ~1.5 MB less, for ~10 ms before the first request.
  Bun.gc(true);
  const port = server.app.server?.port ?? config.PORT;
  logger.info("listening", { port, host: config.HOST, db: server.ctx.database.kind, kv: server.ctx.kv.kind });
  process.stderr.write(`${startupSummary(server.ctx.config, port).join("\n")}\n`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Readiness answers 503 from now on, so a load balancer routes no new work here while requests in flight finish.
    server.lifecycle.draining = true;
    logger.info("shutting down", { signal, inFlight: server.lifecycle.inFlight });
    const since = Date.now();
    const forced = setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS);
    forced.unref();
    // Stop accepting, let requests in flight finish and write their log lines, then release the pools.
    await server.app.server?.stop(false);
    // Bounded by the forced exit's deadline, less a moment for closing the pools.
    await drained(server.lifecycle, Math.max(0, config.SHUTDOWN_TIMEOUT_MS - (Date.now() - since) - 1000));
    await server.close();
    logger.info("stopped", { signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  // A setting found wrong only when used (DATA_DIR taken, PORT in use) reads like the settings check's own line.
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
