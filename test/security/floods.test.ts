import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: sign-up floods and mail abuse (issue 17, point 4). One IP may make only RATE_LIMIT_SIGNUP_IP accounts,
 * guests and code requests, and cause only RATE_LIMIT_MAIL_IP mails (codes, links, invitations); one address receives
 * at most RATE_LIMIT_MAIL_RECIPIENT of them, from any number of IPs. Security notices to an owner always go out, and
 * attacker-written text (a team name) never reaches a subject line. The limits below are API.md's defaults.
 */
const LIMITS = { RATE_LIMIT_SIGNUP_IP: "10/600", RATE_LIMIT_MAIL_IP: "20/3600", RATE_LIMIT_MAIL_RECIPIENT: "10/3600" };
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ ...LIMITS, TRUST_PROXY: true });
});
afterAll(async () => {
  await server.close();
});

let ipCounter = 0;
/** A client address of its own for each test, so the tests' counters never meet. */
const freshIp = () => `198.51.100.${++ipCounter}`;
const from = (ip: string) => ({ "x-forwarded-for": ip });
const PASSWORD = "flood-test-phrase-81";

function expectLimited(res: { status: number; body: { code: string }; headers: Headers }) {
  expect(res.status).toBe(429);
  expect(res.body.code).toBe("RATE_LIMITED");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
}

describe("sign-up floods", () => {
  test("the settings' defaults are API.md's: RATE_LIMIT_SIGNUP_IP 10/600, RATE_LIMIT_MAIL_IP 20/3600, RATE_LIMIT_MAIL_RECIPIENT 10/3600", () => {
    const config = loadConfig({});
    expect(config.RATE_LIMIT_SIGNUP_IP).toEqual({ count: 10, windowS: 600 });
    expect(config.RATE_LIMIT_MAIL_IP).toEqual({ count: 20, windowS: 3600 });
    expect(config.RATE_LIMIT_MAIL_RECIPIENT).toEqual({ count: 10, windowS: 3600 });
  });

  test("a registration flood from one IP is refused with 429 and Retry-After; another IP still registers", async () => {
    const ip = freshIp();
    for (let i = 0; i < 10; i++) {
      const res = await server.request("POST", "/auth/register", { body: { email: uniqueEmail("flood"), password: PASSWORD }, headers: from(ip) });
      expect(res.status).toBe(201);
    }
    const email = uniqueEmail("flood");
    expectLimited(await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: from(ip) }));
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
    const elsewhere = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: from(freshIp()) });
    expect(elsewhere.status).toBe(201);
  });

  test("registrations, guest sign-ups and code requests share one per-IP budget", async () => {
    const ip = freshIp();
    for (let i = 0; i < 4; i++) {
      expect((await server.request("POST", "/auth/register", { body: { email: uniqueEmail("mix"), password: PASSWORD }, headers: from(ip) })).status).toBe(201);
    }
    for (let i = 0; i < 3; i++) expect((await server.request("POST", "/auth/anonymous", { headers: from(ip) })).status).toBe(201);
    for (let i = 0; i < 3; i++) {
      expect((await server.request("POST", "/auth/code/request", { body: { email: uniqueEmail("mix") }, headers: from(ip) })).status).toBe(202);
    }
    expectLimited(await server.request("POST", "/auth/anonymous", { headers: from(ip) }));
    expectLimited(await server.request("POST", "/auth/code/request", { body: { email: uniqueEmail("mix") }, headers: from(ip) }));
  });

  test("sign-in codes sprayed at many addresses from one IP stop at the limit, and no mail leaves for the refused ones", async () => {
    const ip = freshIp();
    for (let i = 0; i < 10; i++) {
      expect((await server.request("POST", "/auth/code/request", { body: { email: uniqueEmail("spray") }, headers: from(ip) })).status).toBe(202);
    }
    const refused = uniqueEmail("spray");
    expectLimited(await server.request("POST", "/auth/code/request", { body: { email: refused }, headers: from(ip) }));
    await Bun.sleep(20);
    expect(server.mailer.outbox.filter((m) => m.to === refused)).toEqual([]);
  });
});

describe("mail abuse", () => {
  test("RATE_LIMIT_MAIL_IP caps the mails one IP causes, across kinds (reset links, verification codes), known and unknown addresses alike", async () => {
    const ip = freshIp();
    const known = uniqueEmail("known");
    await server.ctx.users.create({ email: known, emailVerified: true });
    for (let i = 0; i < 20; i++) {
      const res =
        i % 2
          ? await server.request("POST", "/auth/password/forgot", { body: { email: i === 1 ? known : uniqueEmail("reset") }, headers: from(ip) })
          : await server.request("POST", "/auth/email/verify/resend", { body: { email: uniqueEmail("resend") }, headers: from(ip) });
      expect(res.status).toBe(202);
    }
    expectLimited(await server.request("POST", "/auth/password/forgot", { body: { email: known }, headers: from(ip) }));
    expectLimited(await server.request("POST", "/auth/password/forgot", { body: { email: uniqueEmail("unknown") }, headers: from(ip) }));
  });

  test("a guest's team cannot mail one victim invitation after invitation, even from ever-new IPs; the team name stays out of the subject", async () => {
    const guest = await server.request("POST", "/auth/anonymous", { headers: from(freshIp()) });
    const teamName = 'URGENT: your account is locked <a href="https://evil.example/">unlock</a>';
    const team = await server.request("POST", "/auth/teams", { token: guest.body.accessToken, body: { name: teamName }, headers: from(freshIp()) });
    expect(team.status).toBe(201);
    const victim = uniqueEmail("victim");
    const invite = () =>
      server.request("POST", "/auth/invitations", { token: guest.body.accessToken, body: { email: victim, teamId: team.body.id }, headers: from(freshIp()) });
    for (let i = 0; i < 10; i++) expect((await invite()).status).toBe(201);
    expectLimited(await invite());
    expectLimited(await invite());
    await Bun.sleep(20);
    const mails = server.mailer.outbox.filter((m) => m.to === victim);
    expect(mails).toHaveLength(10);
    for (const mail of mails) {
      expect(mail.subject).toBe("You have been invited to join a team");
      expect(mail.subject).not.toContain("URGENT");
      // In the body the name is text, escaped: no link of the attacker's making.
      expect(mail.html).not.toContain('<a href="https://evil.example/"');
      expect(mail.html).toContain("&lt;a href=");
    }
  });

  test("security notices to the owner are never held back: with the IP's mail budget spent, a password change is still mailed", async () => {
    const ip = freshIp();
    const email = uniqueEmail("owner");
    const registered = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, headers: from(ip) });
    for (let i = 0; i < 20; i++) await server.request("POST", "/auth/password/forgot", { body: { email: uniqueEmail("burn") }, headers: from(ip) });
    expectLimited(await server.request("POST", "/auth/password/forgot", { body: { email }, headers: from(ip) }));
    const before = server.mailer.outbox.length;
    const changed = await server.request("POST", "/auth/password/change", {
      token: registered.body.accessToken,
      body: { currentPassword: PASSWORD, newPassword: "flood-owner-next-phrase" },
      headers: from(ip),
    });
    expect(changed.status).toBe(204);
    expect((await server.mailTo(email, /password/i, before)).subject).toBe("Your password was changed");
  });
});
