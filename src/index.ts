import { ConfigError, loadConfig } from "./config";
import { landing, startupSummary } from "./first-screen";
import { createLogger } from "./logger";
import { buildAuthServer } from "./server";

/**
 * `auth-server --healthcheck` asks the running server's /health and exits 0 or 1: container images without curl
 * (distroless) use it as their HEALTHCHECK.
 */
async function healthcheck(port: number): Promise<never> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
    process.exit(res.ok ? 0 : 1);
  } catch {
    process.exit(1);
  }
}

async function main() {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  if (process.argv.includes("--healthcheck")) await healthcheck(config.PORT);
  const logger = createLogger(config.LOG_LEVEL);
  const server = await buildAuthServer(process.env, { logger });
  // src/body.ts answers 413 for anything over 64 KiB and never reads more; Bun's own cap, which answers with an empty
  // 413, is only the last guard, set well above it so that clients get the JSON error.
  if (!server.app.routes.some((route) => route.method === "GET" && route.path === "/")) server.app.use(landing(config));
  server.app.listen({ port: config.PORT, hostname: config.HOST, maxRequestBodySize: 16 * 1024 * 1024 });
  const port = server.app.server?.port ?? config.PORT;
  logger.info("listening", { port, host: config.HOST, db: server.ctx.database.kind, kv: server.ctx.kv.kind });
  process.stderr.write(`${startupSummary(server.ctx.config, port).join("\n")}\n`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Readiness answers 503 from now on, so a load balancer routes no new work here while requests in flight finish.
    server.lifecycle.draining = true;
    logger.info("shutting down", { signal });
    const forced = setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS);
    forced.unref();
    // Stop accepting, let requests in flight finish, then release the pools.
    await server.app.server?.stop(false);
    await server.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
