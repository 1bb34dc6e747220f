import { configOrExit, runCommand } from "./cli";
import { drained } from "./health";
import { createLogger } from "./logger";
import { buildAuthServer } from "./server";

/** Bun's answer to a port another process holds. */
const ADDRESS_IN_USE = "EADDRINUSE";
const portTaken = (error: unknown) => {
  const e = error as { code?: unknown; message?: unknown };
  return e?.code === ADDRESS_IN_USE || (typeof e?.message === "string" && /EADDRINUSE|address already in use|in use/i.test(e.message));
};

async function serve() {
  const config = configOrExit();
  const logger = createLogger(config.LOG_LEVEL);
  const server = await buildAuthServer(process.env, { logger });
  try {
    // src/body.ts answers 413 for anything over 64 KiB and never reads more; Bun's own cap, which answers with an empty
    // 413, is only the last guard, set well above it so that clients get the JSON error. No SO_REUSEPORT: a second
    // process on a taken port is a start error, not a silent share of its traffic.
    server.app.listen({ port: config.PORT, hostname: config.HOST, maxRequestBodySize: 16 * 1024 * 1024, reusePort: false });
  } catch (error) {
    await server.close();
    if (portTaken(error)) throw new Error(`Invalid setting PORT: ${config.PORT} is already in use on ${config.HOST} (choose a free port)`);
    throw error;
  }
  logger.info("listening", { port: server.app.server?.port, host: config.HOST, db: server.ctx.database.kind, kv: server.ctx.kv.kind });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.lifecycle.draining = true;
    logger.info("shutting down", { signal, inFlight: server.lifecycle.inFlight });
    const forced = setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS);
    forced.unref();
    // Stop accepting, let requests in flight finish and be logged, then release the pools.
    await server.app.server?.stop(false);
    await drained(server.lifecycle, config.SHUTDOWN_TIMEOUT_MS);
    await server.close();
    logger.info("stopped", { signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

async function main() {
  const code = await runCommand(process.argv.slice(2));
  if (code !== null) process.exit(code);
  await serve();
}

main().catch((error) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
