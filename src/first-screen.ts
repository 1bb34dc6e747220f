import { resolve } from "node:path";
import { Elysia } from "elysia";
import type { Config } from "./config";

/**
 * Where `/` leads on a standalone server (src/index.ts; a host app that mounts the server keeps its own `/`), when
 * nothing of the server's own answers it: the hosted pages take `/` when APP_URL is this server; otherwise the
 * hosted sign-in page, or the API reference when HOSTED_UI is off.
 */
export function landingPath(config: Config): string {
  return config.HOSTED_UI ? `${config.AUTH_BASE_PATH}/ui/sign-in` : "/docs";
}

export const landing = (config: Config) =>
  new Elysia({ name: "auth.landing" }).get("/", ({ redirect }) => redirect(landingPath(config), 302), { detail: { hide: true } });

/** A URL's host, port and path only: a password in DATABASE_URL, REDIS_URL or SMTP_URL never reaches the console. */
function whereIs(url: string): string {
  const { protocol, host, pathname } = new URL(url);
  return `${protocol}//${host}${pathname === "/" ? "" : pathname}`;
}

/**
 * What a developer needs to know at start, in plain lines for a person (the JSON log stays on stdout, this goes to
 * stderr): the URL to open, the docs, the plugins, where data lives and where mail goes. Never a secret.
 */
export function startupSummary(config: Config, port: number): string[] {
  const local = ["0.0.0.0", "::", "127.0.0.1", "localhost"].includes(config.HOST) ? "localhost" : config.HOST;
  const url = `http://${local.includes(":") ? `[${local}]` : local}:${port}`;
  const data = config.DATABASE_URL ? `Postgres at ${whereIs(config.DATABASE_URL)}` : `embedded PGlite in ${resolve(config.DATA_DIR)} (set DATABASE_URL for Postgres)`;
  const kv = config.REDIS_URL ? `Redis at ${whereIs(config.REDIS_URL)}` : "in memory (one instance only; set REDIS_URL to share it)";
  const mail =
    config.mailTransport === "smtp" && config.SMTP_URL
      ? `SMTP via ${whereIs(config.SMTP_URL)}, from ${config.MAIL_FROM}`
      : "printed to this console (MAIL_TRANSPORT=console), codes and links included (set SMTP_URL to send)";
  const lines = [
    `Auth server ready: open ${url}`,
    `  API reference  ${url}/docs (OpenAPI spec at ${url}/docs/json)`,
    `  Auth routes    ${url}${config.AUTH_BASE_PATH}/*`,
    `  Plugins on     ${config.AUTH_PLUGINS.join(", ") || "none (core only)"}`,
    `  Data           ${data}`,
    `  Short-lived    ${kv}`,
    `  Mail           ${mail}`,
  ];
  if (config.publicUrl !== url) lines.splice(1, 0, `  Public URL     ${config.publicUrl} (links, cookies and OAuth callbacks use it)`);
  return lines;
}
