import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { type ReceivedMail, startSmtpServer } from "./support/smtp";
import {
  ConsoleMailer,
  createMailer,
  MemoryMailer,
  renderEmail,
  SmtpMailer,
  sendEmail,
  TEMPLATE_NAMES,
  type TemplateName,
  type TemplateProps,
} from "../src/mail";

const CODE = "493817";
const LINK = "https://app.example.com/reset?token=abc_DEF-123";
const INVITE = "https://app.example.com/invite?token=inv_XYZ-789";

const samples: { [K in TemplateName]: TemplateProps[K] } = {
  "verify-email": { code: CODE },
  "sign-in-code": { code: CODE },
  "password-reset": { link: LINK },
  "email-change": { code: CODE, newEmail: "new@example.com" },
  "email-changed": { newEmail: "new@example.com" },
  "password-changed": {},
  "new-sign-in": { ip: "203.0.113.7", userAgent: "Mozilla/5.0 TestBrowser", at: "2025-01-02T03:04:05.000Z" },
  invitation: { link: INVITE, teamName: "Rocket Team", inviterEmail: "boss@example.com" },
  "security-notice": { event: "Two-factor authentication was turned on" },
  "sign-in-method-changed": { method: "passkey", change: "added", name: "Laptop" },
};

describe("renderEmail", () => {
  test("every template renders with a subject, html and text", async () => {
    expect(TEMPLATE_NAMES.sort()).toEqual(Object.keys(samples).sort() as TemplateName[]);
    for (const name of TEMPLATE_NAMES) {
      const r = await renderEmail(name, samples[name]);
      expect(r.subject.length).toBeGreaterThan(0);
      expect(r.html).toContain("<html");
      expect(r.text.length).toBeGreaterThan(0);
      expect(r.text).not.toContain("<");
      expect(r.html).toContain("Auth");
    }
  });

  for (const name of ["verify-email", "sign-in-code", "email-change"] as const) {
    test(`${name}: code in html and text, extractable from text`, async () => {
      const r = await renderEmail(name, samples[name]);
      expect(r.html).toContain(CODE);
      expect(r.text).toContain(CODE);
      const codes = new Set(r.text.match(/\b\d{6}\b/g));
      expect([...codes]).toEqual([CODE]);
      expect(r.html.match(/\b\d{6}\b/g)?.every((c) => c === CODE)).toBe(true);
    });
  }

  test("verify-email subject", async () => {
    expect((await renderEmail("verify-email", { code: CODE })).subject).toBe("Your verification code");
  });

  test("password-reset: link in button and plain text, 1 hour expiry", async () => {
    const r = await renderEmail("password-reset", { link: LINK });
    expect(r.html).toContain(`href="${LINK}"`);
    expect(r.html.split(LINK).length - 1).toBeGreaterThanOrEqual(2);
    expect(r.text).toContain(LINK);
    expect(r.text).toMatch(/token=abc_DEF-123/);
    expect(r.text).toContain("1 hour");
  });

  test("email-change mentions the new address", async () => {
    const r = await renderEmail("email-change", samples["email-change"]);
    expect(r.text).toContain("new@example.com");
  });

  test("email-changed mentions the new address", async () => {
    const r = await renderEmail("email-changed", { newEmail: "new@example.com" });
    expect(r.text).toContain("new@example.com");
  });

  test("new-sign-in shows details, and copes with nulls", async () => {
    const r = await renderEmail("new-sign-in", samples["new-sign-in"]);
    expect(r.text).toContain("203.0.113.7");
    expect(r.text).toContain("Mozilla/5.0 TestBrowser");
    expect(r.text).toContain("2025-01-02T03:04:05.000Z");
    const n = await renderEmail("new-sign-in", { ip: null, userAgent: null, at: "now" });
    expect(n.text).toContain("unknown");
  });

  test("invitation: link, team name when present", async () => {
    const r = await renderEmail("invitation", samples.invitation);
    expect(r.html).toContain(`href="${INVITE}"`);
    expect(r.text).toContain(INVITE);
    expect(r.text).toContain("Rocket Team");
    // Issue 17: the team name is attacker-written text, so it is in the body only, never in the subject.
    expect(r.subject).not.toContain("Rocket Team");
    expect(r.text).toContain("boss@example.com");
    const noTeam = await renderEmail("invitation", { link: INVITE, teamName: null, inviterEmail: null });
    expect(noTeam.text).toContain(INVITE);
    expect(noTeam.text).not.toContain("null");
    expect(noTeam.subject).not.toContain("null");
  });

  test("security-notice shows the event", async () => {
    const r = await renderEmail("security-notice", { event: "A passkey was added" });
    expect(r.text).toContain("A passkey was added");
    expect(r.html).toContain("A passkey was added");
  });

  test("props are escaped in html", async () => {
    const r = await renderEmail("security-notice", { event: "<script>x</script>" });
    expect(r.html).not.toContain("<script>x</script>");
  });
});

describe("MemoryMailer", () => {
  test("last() returns the latest message to an address, case-insensitively; clear() empties", async () => {
    const m = new MemoryMailer();
    await sendEmail(m, "Alice@Example.com", "sign-in-code", { code: "111111" });
    await sendEmail(m, "bob@example.com", "sign-in-code", { code: "222222" });
    await sendEmail(m, "alice@example.com", "verify-email", { code: "333333" });
    expect(m.outbox).toHaveLength(3);
    const last = m.last("ALICE@example.COM");
    expect(last?.subject).toBe("Your verification code");
    expect(last?.text.match(/\b\d{6}\b/)?.[0]).toBe("333333");
    expect(m.last("bob@example.com")?.text).toContain("222222");
    expect(m.last("nobody@example.com")).toBeUndefined();
    m.clear();
    expect(m.outbox).toHaveLength(0);
    expect(m.last("alice@example.com")).toBeUndefined();
    await m.close();
  });
});

describe("createMailer / ConsoleMailer", () => {
  test("chooses console without SMTP_URL and SMTP with it", async () => {
    const c = createMailer({ from: "Auth <no-reply@example.com>" });
    expect(c).toBeInstanceOf(ConsoleMailer);
    const e = createMailer({ smtpUrl: "", from: "x@example.com" });
    expect(e).toBeInstanceOf(ConsoleMailer);
    const s = createMailer({ smtpUrl: "smtp://127.0.0.1:2525", from: "x@example.com" });
    expect(s).toBeInstanceOf(SmtpMailer);
    await Promise.all([c.close(), e.close(), s.close()]);
  });

  test("ConsoleMailer prints one JSON line with the text body", async () => {
    const spy = spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await sendEmail(new ConsoleMailer(), "dev@example.com", "sign-in-code", { code: CODE });
      expect(spy).toHaveBeenCalledTimes(1);
      const out = String(spy.mock.calls[0]?.[0]);
      expect(out.endsWith("\n")).toBe(true);
      expect(out.trim().includes("\n")).toBe(false);
      const line = JSON.parse(out);
      expect(line).toMatchObject({ level: "info", msg: "mail", to: "dev@example.com", subject: "Your sign-in code" });
      expect(line.text).toContain(CODE);
      expect(line.html).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });
});

describe("SmtpMailer against a real SMTP server", () => {
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let port = 0;
  let received: ReceivedMail[] = [];

  beforeAll(async () => {
    smtp = await startSmtpServer();
    port = smtp.port;
    received = smtp.received;
  });

  afterAll(async () => {
    await smtp.close();
  });

  test("delivers a rendered email", async () => {
    const mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: "Auth <no-reply@example.com>" });
    expect(mailer).toBeInstanceOf(SmtpMailer);
    try {
      await sendEmail(mailer, "user@example.com", "verify-email", { code: CODE });
    } finally {
      await mailer.close();
    }
    expect(received).toHaveLength(1);
    const msg = received[0] as ReceivedMail;
    expect(msg.from).toBe("no-reply@example.com");
    expect(msg.to).toEqual(["user@example.com"]);
    expect(msg.raw).toMatch(/^To: user@example\.com\r?$/m);
    expect(msg.raw).toMatch(/^Subject: Your verification code\r?$/m);
    expect(msg.raw).toContain(CODE);
    expect(msg.raw).toContain("text/plain");
    expect(msg.raw).toContain("text/html");
  });

  test("send rejects when the server is unreachable", async () => {
    const probe = new SMTPServer({ authOptional: true, disabledCommands: ["STARTTLS"], logger: false });
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const deadPort = (probe.server.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const mailer = new SmtpMailer(`smtp://127.0.0.1:${deadPort}`, "no-reply@example.com");
    await expect(mailer.send({ to: "a@example.com", subject: "s", html: "<p>x</p>", text: "x" })).rejects.toThrow();
    await mailer.close();
  });
});
