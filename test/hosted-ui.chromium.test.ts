import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { Secret, TOTP } from "otpauth";
import { expectOnlyOrigins, fieldError, type HostedSite, PASSWORD, recordedProfile, shot, startHostedSite } from "./support/hosted-pages";
import { type TestServer, uniqueEmail } from "./support/server";

// The preload's default reaches only the first file of a run; these tests boot servers and browsers.
setDefaultTimeout(60_000);

/**
 * The hosted pages end to end in Chromium, with JavaScript off (plain forms are the whole flow), mails read from a
 * real SMTP catcher, every request the browser makes recorded (none may leave the server's origin), and a screenshot
 * of each page kept in test/output/hosted-ui/.
 */
const TIMEOUT_MS = 90_000;

let hosted: HostedSite;
let smtp: HostedSite["smtp"];
let mailTo: HostedSite["mailTo"];
let server: TestServer;
let site: HostedSite["site"];
let browser: Browser;

beforeAll(async () => {
  hosted = await startHostedSite(() => ({ REQUIRE_EMAIL_VERIFICATION: true, APP_NAME: "Acme", BRAND_COLOR: "#0e7490" }));
  ({ smtp, mailTo, server, site, browser } = hosted);
}, 60_000);

afterAll(() => hosted?.close());

const plainBrowser = (options: { colorScheme?: "light" | "dark"; javaScriptEnabled?: boolean } = {}) => recordedProfile(browser, options);
const expectOnlyOwnOrigin = (requests: string[]) => expectOnlyOrigins(requests, [site.origin]);

async function signUp(page: Page, email: string) {
  await page.goto(`${site.origin}/auth/ui/sign-up`);
  await page.fill("#field-email", email);
  await page.fill("#field-password", PASSWORD);
  await page.fill("#field-confirmPassword", PASSWORD);
  const mailsBefore = smtp.received.length;
  await Promise.all([page.waitForURL(/\/auth\/ui\/verify-email/), page.click("button[type=submit]")]);
  const code = /\b(\d{6})\b/.exec(await mailTo(email, /\b\d{6}\b/, mailsBefore))?.[1] ?? "";
  await page.fill("#field-code", code);
  await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("form[action$='/verify-email'] button")]);
}

describe("hosted pages in Chromium (no JavaScript)", () => {
  test(
    "sign up (with its errors), verify the email, edit the profile, sign out, sign in (wrong password first)",
    async () => {
      const { context, page, requests, cspViolations } = await plainBrowser();
      try {
        const email = uniqueEmail("hosted");
        await page.goto(site.origin);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/sign-in");
        expect(await page.title()).toBe("Sign in · Acme");
        await shot(page, "sign-in");

        await Promise.all([page.waitForURL(/sign-up/), page.click("text=Create an account")]);
        await page.fill("#field-email", email);
        await page.fill("#field-password", PASSWORD);
        await page.fill("#field-confirmPassword", "something else entirely");
        await page.click("button[type=submit]");
        expect(await fieldError(page, "confirmPassword")).toBe("The passwords do not match");
        expect(await page.getAttribute("#field-confirmPassword", "aria-describedby")).toBe("field-confirmPassword-error");
        expect(await page.inputValue("#field-email")).toBe(email);
        await shot(page, "sign-up-error");
        await page.fill("#field-password", "password");
        await page.fill("#field-confirmPassword", "password");
        await page.click("button[type=submit]");
        expect(await fieldError(page, "password")).toContain("common");
        await page.goto(`${site.origin}/auth/ui/sign-up`);
        await shot(page, "sign-up");

        await signUp(page, email);
        expect(await page.textContent("main")).toContain(email);
        await shot(page, "account");
        const cookies = await context.cookies(site.origin);
        expect(cookies.map((c) => [c.name, c.httpOnly]).sort()).toEqual([
          ["auth_at", true],
          ["auth_rt", true],
        ]);

        await page.fill("#field-firstName", "Ada");
        await page.fill("#field-lastName", "Lovelace");
        await Promise.all([page.waitForURL(/notice=profile/), page.click("text=Save profile")]);
        expect(await page.textContent("[role=status]")).toBe("Your profile was saved.");
        expect(await page.inputValue("#field-firstName")).toBe("Ada");

        await Promise.all([page.waitForURL(/\/auth\/ui\/sign-in/), page.click("text=Sign out")]);
        expect(await context.cookies(site.origin)).toEqual([]);
        await page.goto(`${site.origin}/auth/ui/account`);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/sign-in");

        await page.fill("#field-email", email);
        await page.fill("#field-password", "not the password");
        await page.click("button[type=submit]");
        expect(await page.textContent("[role=alert]")).toBe("Email or password is incorrect");
        expect(await page.inputValue("#field-email")).toBe(email);
        await shot(page, "sign-in-error");
        await page.fill("#field-password", PASSWORD);
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("button[type=submit]")]);
        expect(await page.inputValue("#field-firstName")).toBe("Ada");

        // Signed in, the sign-in page and / lead to the account page.
        await page.goto(`${site.origin}/auth/ui/sign-in`);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/account");
        await page.goto(site.origin);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/account");

        expectOnlyOwnOrigin(requests);
        expect(cspViolations).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "forgot password, the emailed link (APP_URL + /reset-password) to the reset page, a new password, sign in with it; the link works once",
    async () => {
      const { context, page, requests } = await plainBrowser();
      try {
        const email = uniqueEmail("reset");
        await signUp(page, email);
        await Promise.all([page.waitForURL(/sign-in/), page.click("text=Sign out")]);

        await Promise.all([page.waitForURL(/forgot-password/), page.click("text=Forgot password?")]);
        await shot(page, "forgot-password");
        await page.fill("#field-email", email);
        const before = smtp.received.length;
        await page.click("button[type=submit]");
        expect(await page.textContent("[role=status]")).toContain("a link to reset its password is on its way");
        await shot(page, "forgot-password-sent");

        const link = /(http:\/\/localhost:\d+\/reset-password\?token=[A-Za-z0-9_-]+)/.exec(await mailTo(email, /reset-password\?token=/, before))?.[1] ?? "";
        expect(link.startsWith(`${site.origin}/reset-password?token=`)).toBe(true);
        await page.goto(link);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/reset-password");
        await shot(page, "reset-password");
        await page.fill("#field-newPassword", "a brand new passphrase");
        await page.fill("#field-confirmPassword", "not the same");
        await page.click("button[type=submit]");
        expect(await fieldError(page, "confirmPassword")).toBe("The passwords do not match");
        await page.fill("#field-newPassword", "password");
        await page.fill("#field-confirmPassword", "password");
        await page.click("button[type=submit]");
        expect(await fieldError(page, "newPassword")).toContain("common");
        await shot(page, "reset-password-error");
        await page.fill("#field-newPassword", "a brand new passphrase");
        await page.fill("#field-confirmPassword", "a brand new passphrase");
        await Promise.all([page.waitForURL(/notice=password-reset/), page.click("button[type=submit]")]);
        expect(await page.textContent("[role=status]")).toContain("Your password was changed");

        await page.fill("#field-email", email);
        await page.fill("#field-password", "a brand new passphrase");
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("button[type=submit]")]);

        await page.goto(link);
        expect(await page.textContent("[role=alert]")).toBe("This reset link is invalid or has expired.");
        await shot(page, "reset-password-spent");
        expectOnlyOwnOrigin(requests);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "the account page lists the sessions and revokes another one; that browser is signed out at once",
    async () => {
      const first = await plainBrowser();
      const second = await plainBrowser();
      try {
        const email = uniqueEmail("sessions");
        await signUp(first.page, email);
        await second.page.goto(`${site.origin}/auth/ui/sign-in`);
        await second.page.fill("#field-email", email);
        await second.page.fill("#field-password", PASSWORD);
        await Promise.all([second.page.waitForURL(/account/), second.page.click("button[type=submit]")]);

        await first.page.reload();
        expect(await first.page.locator("#sessions tr").count()).toBe(2);
        await shot(first.page, "account-sessions");
        await Promise.all([first.page.waitForURL(/notice=session-revoked/), first.page.click("button:text('Revoke')")]);
        expect(await first.page.locator("#sessions tr").count()).toBe(1);

        await second.page.reload();
        expect(new URL(second.page.url()).pathname).toBe("/auth/ui/sign-in");
        expectOnlyOwnOrigin([...first.requests, ...second.requests]);
      } finally {
        await first.context.close();
        await second.context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "the MFA step after a password sign-in: a wrong code shows next to the field, the right one signs in",
    async () => {
      const email = uniqueEmail("mfa");
      const user = await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
      const { accessToken } = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
      const setup = await server.request("POST", "/auth/mfa/totp/setup", { token: accessToken });
      const totp = (atMs: number) => new TOTP({ secret: Secret.fromBase32(setup.body.secret) }).generate({ timestamp: atMs });
      // The step before this one (one step of skew is allowed), so the sign-in's code is not a replay of it. Not in
      // the last seconds of a step: the server would check it in the next one, where it is two steps old (CI saw that).
      const intoStepMs = Date.now() % 30_000;
      if (intoStepMs > 27_000) await Bun.sleep(30_000 - intoStepMs + 50);
      expect((await server.request("POST", "/auth/mfa/totp/confirm", { token: accessToken, body: { code: totp(Date.now() - 30_000) } })).status).toBe(200);

      const { context, page, requests } = await plainBrowser();
      try {
        await page.goto(`${site.origin}/auth/ui/sign-in`);
        await page.fill("#field-email", email);
        await page.fill("#field-password", PASSWORD);
        await page.click("button[type=submit]");
        expect(await page.title()).toBe("Two-step verification · Acme");
        expect(await context.cookies(site.origin)).toEqual([]);
        await shot(page, "mfa");
        const wrong = totp(Date.now()) === "000000" ? "111111" : "000000";
        await page.fill("#field-code", wrong);
        await page.click("form:first-of-type button[type=submit]");
        expect(await fieldError(page, "code")).toBe("The code is invalid or has expired");
        await shot(page, "mfa-error");
        await page.fill("#field-code", totp(Date.now()));
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("form:first-of-type button[type=submit]")]);
        expect(await page.textContent("main")).toContain(email);
        expectOnlyOwnOrigin(requests);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "sign in with an email code read from the mail",
    async () => {
      const { context, page, requests } = await plainBrowser();
      try {
        const email = uniqueEmail("code");
        await server.ctx.users.create({ email, emailVerified: true });
        await page.goto(`${site.origin}/auth/ui/sign-in`);
        await Promise.all([page.waitForURL(/sign-in\/code/), page.click("text=Sign in with an email code instead")]);
        await shot(page, "email-code");
        await page.fill("#field-email", email);
        const before = smtp.received.length;
        await page.click("button[type=submit]");
        expect(await page.textContent("[role=status]")).toContain("a 6-digit code is on its way");
        await shot(page, "email-code-sent");
        const code = /\b(\d{6})\b/.exec(await mailTo(email, /\b\d{6}\b/, before))?.[1] ?? "";
        await page.fill("#field-code", code);
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("button[type=submit]")]);
        expect(await page.textContent("main")).toContain(email);
        expectOnlyOwnOrigin(requests);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "accept an invitation from its emailed link (APP_URL + /accept-invitation) as a new account",
    async () => {
      const owner = await server.ctx.users.create({ email: uniqueEmail("owner"), emailVerified: true });
      const { accessToken } = await server.ctx.sessions.create(owner, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
      const team = await server.request("POST", "/auth/teams", { token: accessToken, body: { name: "Research Lab" } });
      const invitee = uniqueEmail("invitee");
      const before = smtp.received.length;
      expect((await server.request("POST", "/auth/invitations", { token: accessToken, body: { email: invitee, teamId: team.body.id } })).status).toBe(201);
      const link = /(http:\/\/localhost:\d+\/accept-invitation\?token=[A-Za-z0-9_%-]+)/.exec(await mailTo(invitee, /accept-invitation/, before))?.[1] ?? "";
      expect(link.startsWith(`${site.origin}/accept-invitation?token=`)).toBe(true);

      const { context, page, requests } = await plainBrowser();
      try {
        await page.goto(link);
        expect(new URL(page.url()).pathname).toBe("/auth/ui/accept-invitation");
        expect(await page.textContent("h1")).toBe("You are invited to join Research Lab");
        await shot(page, "accept-invitation");
        await page.fill("#field-password", "password");
        await page.click("button[type=submit]");
        expect(await fieldError(page, "password")).toContain("common");
        await page.fill("#field-firstName", "Grace");
        await page.fill("#field-password", PASSWORD);
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("button[type=submit]")]);
        expect(await page.textContent("main")).toContain(invitee);
        const members = await server.request("GET", `/auth/teams/${team.body.id}/members`, { token: accessToken });
        expect(members.body.map((m: { email: string }) => m.email)).toContain(invitee);
        await page.goto(link);
        expect(await page.textContent("[role=alert]")).toContain("This invitation is invalid");
        expectOnlyOwnOrigin(requests);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "the account page changes the password and deletes the account, each with a proof of the password",
    async () => {
      const { context, page, requests } = await plainBrowser();
      try {
        const email = uniqueEmail("account");
        const newPassword = "another long passphrase";
        await signUp(page, email);
        await page.fill("#field-currentPassword", "not my password");
        await page.fill("#field-newPassword", newPassword);
        await page.fill("#field-confirmPassword", newPassword);
        await page.click("text=Change password");
        expect(await fieldError(page, "currentPassword")).toBe("The current password is not right");
        await shot(page, "account-password-error");
        await page.fill("#field-currentPassword", PASSWORD);
        await page.fill("#field-newPassword", newPassword);
        await page.fill("#field-confirmPassword", newPassword);
        await Promise.all([page.waitForURL(/notice=password/), page.click("text=Change password")]);
        expect(await page.textContent("[role=status]")).toContain("Your password was changed");

        await page.fill("#field-deletePassword", PASSWORD);
        await page.click("text=Delete my account");
        expect(await fieldError(page, "deletePassword")).toBe("The password is not right");
        await page.fill("#field-deletePassword", newPassword);
        await Promise.all([page.waitForURL(/notice=account-deleted/), page.click("text=Delete my account")]);
        expect(await page.textContent("[role=status]")).toBe("Your account was deleted.");
        expect(await context.cookies(site.origin)).toEqual([]);
        expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
        expectOnlyOwnOrigin(requests);
      } finally {
        await context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "branding and a dark look by prefers-color-scheme, from the one stylesheet on this server",
    async () => {
      const light = await plainBrowser({ javaScriptEnabled: true });
      const dark = await plainBrowser({ colorScheme: "dark", javaScriptEnabled: true });
      try {
        const backgroundOf = async (p: { page: Page }) => {
          await p.page.goto(`${site.origin}/auth/ui/sign-in`);
          return p.page.evaluate(() => ({
            body: getComputedStyle(document.body).backgroundColor,
            button: getComputedStyle(document.querySelector("button") as Element).backgroundColor,
            brand: document.querySelector("header.brand")?.textContent,
          }));
        };
        const l = await backgroundOf(light);
        const d = await backgroundOf(dark);
        expect(l.brand).toBe("Acme");
        expect(l.button).toBe("rgb(14, 116, 144)");
        expect(l.body).not.toBe(d.body);
        await shot(dark.page, "sign-in-dark");
        expectOnlyOwnOrigin([...light.requests, ...dark.requests]);
        expect([...light.cspViolations, ...dark.cspViolations]).toEqual([]);
      } finally {
        await light.context.close();
        await dark.context.close();
      }
    },
    TIMEOUT_MS,
  );
});
