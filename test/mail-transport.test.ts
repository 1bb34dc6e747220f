import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { ConfigError, loadConfig } from "../src/config";
import { type AuthServer, buildAuthServer } from "../src/server";
import { mailOutbox } from "../src/db/schema";
import { isolatedDatabase, testStore, uniqueEmail } from "./support/server";
import { startSmtpServer } from "./support/smtp";

// Issue 18: MAIL_TRANSPORT as API.md says; console mail lines are log lines; with SMTP no code, link or token in a log.

const PASSWORD = "correct horse battery staple";
const FAST = { PASSWORD_HASH_MEMORY_KIB: 4096, PASSWORD_HASH_TIME_COST: 1 } as const;

function settingError(input: Record<string, string>): string {
  try {
    loadConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return "";
}

/** Everything the process writes to stdout while `work` runs, as lines. */
async function stdoutOf(work: () => Promise<void>): Promise<string[]> {
  const chunks: string[] = [];
  const spy = spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    return true;
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return chunks.join("").split("\n").filter(Boolean);
}

async function call(server: AuthServer, path: string, body: unknown) {
  const res = await server.app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }));
  return res.status;
}

let open: AuthServer[] = [];
afterEach(async () => {
  for (const server of open) {
    await server.close();
    await Promise.allSettled([server.ctx.database.close(), server.ctx.kv.close()]);
  }
  open = [];
});

async function start(options: Record<string, string | number>) {
  const server = await buildAuthServer({ ...FAST, ...options }, { database: await isolatedDatabase(), kv: testStore() });
  open.push(server);
  return server;
}

describe("MAIL_TRANSPORT", () => {
  test("console is the default outside production only; smtp needs SMTP_URL; each mistake names its variable", () => {
    expect(loadConfig({}).mailTransport).toBe("console");
    expect(loadConfig({ SMTP_URL: "smtp://127.0.0.1:2525" }).mailTransport).toBe("smtp");
    expect(settingError({ NODE_ENV: "production" })).toStartWith("Invalid setting MAIL_TRANSPORT:");
    expect(settingError({ NODE_ENV: "production" })).toContain("SMTP_URL");
    expect(loadConfig({ NODE_ENV: "production", MAIL_TRANSPORT: "console" }).mailTransport).toBe("console");
    expect(loadConfig({ NODE_ENV: "production", SMTP_URL: "smtp://127.0.0.1:2525" }).mailTransport).toBe("smtp");
    expect(settingError({ MAIL_TRANSPORT: "smtp" })).toBe("Invalid setting SMTP_URL: is required with MAIL_TRANSPORT=smtp");
    expect(settingError({ MAIL_TRANSPORT: "pigeon" })).toBe("Invalid setting MAIL_TRANSPORT: must be smtp or console");
  });

  test("console: announced at start, and each mail is a log line with time at info, which LOG_LEVEL silences", async () => {
    const email = uniqueEmail("console");
    const lines = await stdoutOf(async () => {
      const server = await start({ MAIL_TRANSPORT: "console", LOG_LEVEL: "info" });
      expect(await call(server, "/auth/code/request", { email })).toBe(202);
      await Bun.sleep(300);
    });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.some((l) => l.level === "warn" && String(l.msg).includes("MAIL_TRANSPORT=console"))).toBe(true);
    const mail = parsed.find((l) => l.msg === "mail" && l.to === email);
    expect(mail).toMatchObject({ level: "info", msg: "mail", to: email });
    expect(typeof mail?.time).toBe("string");
    expect(String(mail?.text)).toMatch(/\b\d{6}\b/);

    const quiet = uniqueEmail("silent");
    const silenced = await stdoutOf(async () => {
      const server = await start({ MAIL_TRANSPORT: "console", LOG_LEVEL: "silent" });
      expect(await call(server, "/auth/code/request", { email: quiet })).toBe(202);
      await Bun.sleep(300);
    });
    expect(silenced.join("\n")).not.toContain(quiet);
  });

  test("smtp: codes, links and tokens reach the mailbox and never a log line, at debug, and when SMTP fails", async () => {
    const smtp = await startSmtpServer();
    const email = uniqueEmail("smtp");
    let lines: string[] = [];
    try {
      lines = await stdoutOf(async () => {
        const server = await start({ SMTP_URL: smtp.url, LOG_LEVEL: "debug" });
        expect(await call(server, "/auth/register", { email, password: PASSWORD })).toBe(201);
        expect(await call(server, "/auth/code/request", { email })).toBe(202);
        expect(await call(server, "/auth/password/forgot", { email })).toBe(202);
        const deadline = Date.now() + 5000;
        while (smtp.received.filter((m) => m.to.includes(email)).length < 2 && Date.now() < deadline) await Bun.sleep(20);
      });
    } finally {
      await smtp.close();
    }
    const mails = smtp.received.filter((m) => m.to.includes(email)).map((m) => m.raw).join("\n");
    const code = /\b(\d{6})\b/.exec(mails)?.[1];
    const token = /token=([A-Za-z0-9_-]{20,})/.exec(mails.replaceAll("=\r\n", ""))?.[1];
    expect(code).toBeDefined();
    expect(token).toBeDefined();
    const log = lines.join("\n");
    expect(log).toContain('"msg":"request"');
    expect(log).not.toContain(code as string);
    expect(log).not.toContain(token as string);

    // The SMTP server is gone now: the failure is logged, the code waiting in the outbox never.
    let queued = "";
    const failed = await stdoutOf(async () => {
      const server = await start({ SMTP_URL: smtp.url, LOG_LEVEL: "debug" });
      expect(await call(server, "/auth/code/request", { email })).toBe(202);
      const deadline = Date.now() + 10_000;
      let row: typeof mailOutbox.$inferSelect | undefined;
      while (!row?.attempts && Date.now() < deadline) {
        [row] = await server.ctx.db.select().from(mailOutbox);
        await Bun.sleep(20);
      }
      const opened = row && (await server.ctx.secrets.unseal("mail-outbox", row.sealed));
      queued = opened ? opened.value : "";
    });
    const queuedCode = /\b(\d{6})\b/.exec(queued)?.[1];
    expect(queuedCode).toBeDefined();
    expect(failed.join("\n")).toContain("mail not sent yet, will retry");
    expect(failed.join("\n")).not.toContain(queuedCode as string);
  }, 30_000);
});

