import { afterEach, describe, expect, test } from "bun:test";
import { mailOutbox } from "../src/db/schema";
import type { Database } from "../src/db";
import type { Logger } from "../src/logger";
import { MAIL_GIVE_UP_MS } from "../src/mail/outbox";
import { type AuthServer, buildAuthServer } from "../src/server";
import { isolatedDatabase, testStore, uniqueEmail } from "./support/server";
import { startSmtpServer } from "./support/smtp";
import { movableClock } from "./support/users";

// Issue 18: a mail that fails to send is not lost; it waits in a durable outbox and leaves once SMTP is back.

const FAST = { PASSWORD_HASH_MEMORY_KIB: 4096, PASSWORD_HASH_TIME_COST: 1, RATE_LIMIT_CODE_EMAIL: "1000/60", RATE_LIMIT_MAIL_IP: "1000/60", RATE_LIMIT_SIGNUP_IP: "1000/60" } as const;

type Line = { level: string; msg: string } & Record<string, unknown>;

function capturingLogger(lines: Line[]): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push({ level, msg, ...fields });
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

let servers: AuthServer[] = [];
let databases: Database[] = [];
afterEach(async () => {
  for (const server of servers) {
    await server.close();
    await server.ctx.kv.close();
  }
  for (const database of databases) await database.close();
  servers = [];
  databases = [];
});

async function start(options: Record<string, string | number>, ports: Parameters<typeof buildAuthServer>[1] & { database: Database }) {
  const server = await buildAuthServer({ ...FAST, ...options }, { kv: testStore(), ...ports });
  servers.push(server);
  return server;
}

async function database() {
  const made = await isolatedDatabase();
  databases.push(made);
  return made;
}

async function post(server: AuthServer, path: string, body: unknown) {
  const res = await server.app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
  return res.status;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** A loopback port with nothing listening on it (taken from a server that is closed again). */
async function deadSmtpPort(): Promise<number> {
  const probe = await startSmtpServer();
  await probe.close();
  return probe.port;
}

const codeIn = (raw: string) => /\b(\d{6})\b/.exec(raw)?.[1];

/** What a queued mail says, opened as the worker opens it. */
async function queuedText(server: AuthServer): Promise<string | undefined> {
  const [row] = await server.ctx.db.select().from(mailOutbox).limit(1);
  if (!row) return undefined;
  const opened = await server.ctx.secrets.unseal("mail-outbox", row.sealed);
  return opened ? (JSON.parse(opened.value) as { text: string }).text : undefined;
}

describe("mail outbox", () => {
  test("a code requested while SMTP is down is answered 202, waits in the outbox and arrives once SMTP is back", async () => {
    const port = await deadSmtpPort();
    const lines: Line[] = [];
    const server = await start({ SMTP_URL: `smtp://127.0.0.1:${port}` }, { database: await database(), logger: capturingLogger(lines) });
    const email = uniqueEmail("outage");
    expect(await post(server, "/auth/code/request", { email })).toBe(202);

    // The first attempt fails and is recorded for a retry; the row holds the mail sealed, not its code or address.
    const failed = await until("a failed attempt", async () => (await server.ctx.db.select().from(mailOutbox)).find((r) => r.attempts >= 1));
    const code = codeIn((await queuedText(server)) ?? "");
    expect(code).toBeDefined();
    expect(failed.sealed).not.toContain(code as string);
    expect(failed.sealed).not.toContain(email);
    expect(lines.some((l) => l.msg === "mail not sent yet, will retry" && l.level === "warn")).toBe(true);

    const smtp = await startSmtpServer(port);
    try {
      const mail = await until("the mail after recovery", () => smtp.received.find((m) => m.to.includes(email)));
      expect(codeIn(mail.raw)).toBe(code as string);
      expect(await post(server, "/auth/code/verify", { email, code })).toBe(200);
      // Delivered once: the row is gone, and a few more polls send nothing again.
      await until("the row deleted", async () => (await server.ctx.db.select().from(mailOutbox)).length === 0);
      await Bun.sleep(2_500);
      expect(smtp.received.filter((m) => m.to.includes(email))).toHaveLength(1);
    } finally {
      await smtp.close();
    }
    expect(JSON.stringify(lines)).not.toContain(code as string);
  }, 60_000);

  test("instances sharing the outbox deliver each mail once", async () => {
    const smtp = await startSmtpServer();
    try {
      const shared = await database();
      const a = await start({ SMTP_URL: smtp.url, LOG_LEVEL: "silent" }, { database: shared });
      const b = await start({ SMTP_URL: smtp.url, LOG_LEVEL: "silent" }, { database: shared });
      const emails = Array.from({ length: 12 }, (_, i) => uniqueEmail(`shared${i}`));
      const statuses = await Promise.all(emails.map((email, i) => post(i % 2 ? a : b, "/auth/code/request", { email })));
      expect(statuses.every((s) => s === 202)).toBe(true);
      await until("every mail", () => emails.every((email) => smtp.received.some((m) => m.to.includes(email))));
      await until("the outbox empty", async () => (await a.ctx.db.select().from(mailOutbox)).length === 0);
      await Bun.sleep(2_500);
      for (const email of emails) expect(smtp.received.filter((m) => m.to.includes(email))).toHaveLength(1);
    } finally {
      await smtp.close();
    }
  }, 60_000);

  test("a mail SMTP never takes is given up after the bound, with an error line that carries no code", async () => {
    const clock = movableClock();
    const lines: Line[] = [];
    const server = await start({ SMTP_URL: `smtp://127.0.0.1:${await deadSmtpPort()}` }, { database: await database(), logger: capturingLogger(lines), clock });
    expect(await post(server, "/auth/code/request", { email: uniqueEmail("never") })).toBe(202);
    await until("a failed attempt", async () => (await server.ctx.db.select().from(mailOutbox)).find((r) => r.attempts >= 1));
    const code = codeIn((await queuedText(server)) ?? "") as string;
    expect(code).toBeDefined();

    clock.advance(MAIL_GIVE_UP_MS / 1000 + 600);
    const given = await until("the give-up line", () => lines.find((l) => l.msg === "mail given up"));
    expect(given).toMatchObject({ level: "error", subject: "Your sign-in code" });
    expect(await server.ctx.db.select().from(mailOutbox)).toHaveLength(0);
    expect(JSON.stringify(lines)).not.toContain(code);
  }, 60_000);
});
