import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Secret, TOTP } from "otpauth";
import type { Browser, Page } from "playwright-core";
import { expectOnlyOrigins, fieldError, type HostedSite, PASSWORD, type RecordedProfile, recordedProfile, shot, startHostedSite } from "./support/hosted-pages";
import { startTestIdp, type TestIdp } from "./support/oidc-provider";
import { type TestServer, uniqueEmail } from "./support/server";
import { attachVirtualAuthenticator } from "./support/webauthn-page";

// The preload's default reaches only the first file of a run; these tests boot servers and browsers.
setDefaultTimeout(60_000);

/**
 * The hosted pages' other half in Chromium: the provider button against a real OpenID Connect provider, passkeys with
 * Chromium's virtual authenticator, and the account page's sections, with the step-up prompt where a route asks for
 * it. Every request is recorded: none may leave this server's and the provider's origins. Screenshots go to
 * test/output/hosted-ui/.
 */
const TIMEOUT_MS = 120_000;

let hosted: HostedSite;
let smtp: HostedSite["smtp"];
let mailTo: HostedSite["mailTo"];
let idp: TestIdp;
let server: TestServer;
let site: HostedSite["site"];
let browser: Browser;
/** The server's clock runs this far ahead: past REAUTH_MAX_AGE_S (300 s), the last sign-in no longer counts as proof. */
let skewMs = 0;
const now = () => Date.now() + skewMs;

beforeAll(async () => {
  hosted = await startHostedSite(
    async (origin) => {
      idp = await startTestIdp(`${origin}/auth/oauth/oidc/callback`);
      return { APP_NAME: "Acme", BRAND_COLOR: "#0e7490", OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret };
    },
    { clock: { now: () => new Date(now()) } },
  );
  ({ smtp, mailTo, server, site, browser } = hosted);
}, 60_000);

afterAll(async () => {
  await hosted?.close();
  await idp?.close();
});

const ownOrigins = () => [site.origin, idp.issuer];

/** Signs up on the page (no email confirmation on this server): the browser lands on the account page. */
async function signUp(page: Page, email: string) {
  await page.goto(`${site.origin}/auth/ui/sign-up`);
  await page.fill("#field-email", email);
  await page.fill("#field-password", PASSWORD);
  await page.fill("#field-confirmPassword", PASSWORD);
  await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("form[action$='/sign-up'] button[type=submit]")]);
}

/**
 * At the provider: its login and consent steps are small endpoints that answer JSON (test/support/oidc-provider.ts), so
 * the page posts each step's form itself, as the provider's own pages would, until the browser is back on our origin.
 */
async function finishAtProvider(page: Page, sub: string) {
  await page.waitForURL((url) => url.origin === idp.issuer);
  for (let step = 0; step < 4; step++) {
    await page.waitForURL((url) => url.origin === site.origin || url.pathname.startsWith("/interaction/"));
    if (new URL(page.url()).origin === site.origin) return;
    const { prompt } = JSON.parse((await page.textContent("body")) ?? "{}") as { prompt: string };
    await Promise.all([
      page.waitForNavigation(),
      page.evaluate(
        ({ action, sub }) => {
          const form = document.createElement("form");
          form.method = "post";
          form.action = `${location.pathname}/${action}`;
          const input = document.createElement("input");
          input.name = "login";
          input.value = sub;
          form.append(input);
          document.body.append(form);
          form.submit();
        },
        { action: prompt === "login" ? "login" : "confirm", sub },
      ),
    ]);
  }
  throw new Error(`still at the provider: ${page.url()}`);
}

async function withProfile(javaScriptEnabled: boolean, run: (p: RecordedProfile) => Promise<void>) {
  const profile = await recordedProfile(browser, { javaScriptEnabled });
  try {
    await run(profile);
    expectOnlyOrigins(profile.requests, ownOrigins());
    expect(profile.cspViolations).toEqual([]);
  } finally {
    skewMs = 0;
    await profile.context.close();
  }
}

describe("hosted pages in Chromium: providers, passkeys, the account page", () => {
  test(
    "the provider's button signs in with the real OpenID Connect provider: a new account, shown linked on the account page",
    () =>
      withProfile(true, async ({ page }) => {
        const account = idp.addAccount({ sub: `hosted-${crypto.randomUUID()}`, email: uniqueEmail("oidc"), email_verified: true, given_name: "Olga" });
        await page.goto(`${site.origin}/auth/ui/sign-in`);
        await shot(page, "sign-in-providers");
        await page.click("text=Continue with single sign-on");
        await finishAtProvider(page, account.sub);
        await page.waitForURL(/\/auth\/ui\/account/);
        expect(await page.textContent("main")).toContain(account.email ?? "?");
        expect(await page.textContent("#linked")).toContain(`linked as ${account.email}`);
        // Its only way in: unlinking it is refused by its message (after no step-up: the sign-in is fresh).
        await page.click("button[aria-label='Unlink single sign-on']");
        expect(await page.textContent("[role=alert]")).toContain("only way to sign in");
        await shot(page, "account-linked");
      }),
    TIMEOUT_MS,
  );

  test(
    "a provider's failure comes back to the sign-in page by its message",
    () =>
      withProfile(false, async ({ page }) => {
        await page.goto(`${site.origin}/auth/ui/oauth/done?error=ACCESS_DENIED`);
        expect(await page.textContent("[role=alert]")).toBe("The sign-in was cancelled at the provider");
        await page.goto(`${site.origin}/auth/ui/oauth/nope`);
        expect(await page.textContent("[role=alert]")).toBe("This sign-in provider is not available");
      }),
    TIMEOUT_MS,
  );

  test(
    "passkeys: added from the account page after a step-up prompt (password), renamed, used to sign in, removed",
    () =>
      withProfile(true, async ({ page }) => {
        await attachVirtualAuthenticator(page);
        const email = uniqueEmail("passkey");
        await signUp(page, email);
        expect(await page.textContent("#passkeys")).toBe("");
        skewMs = 301_000;

        await page.click("text=Add a passkey");
        expect(await page.title()).toBe("Confirm it is you · Acme");
        await page.fill("#field-password", "not my password");
        await page.click("form[action$='/reauth'] button[type=submit]");
        expect(await fieldError(page, "password")).toBe("The password is not right");
        await shot(page, "reauth-error");
        await page.fill("#field-password", PASSWORD);
        await page.click("form[action$='/reauth'] button[type=submit]");
        expect(await page.title()).toBe("Add a passkey · Acme");
        await shot(page, "passkey-add");
        await page.fill("#field-name", "Work laptop");
        await Promise.all([page.waitForURL(/notice=passkey-added/), page.click("text=Create the passkey")]);
        expect(await page.inputValue("#passkeys input[name=name]")).toBe("Work laptop");

        await page.fill("#passkeys input[name=name]", "Laptop");
        await Promise.all([page.waitForURL(/notice=passkey-renamed/), page.click("#passkeys button:text('Rename')")]);
        expect(await page.inputValue("#passkeys input[name=name]")).toBe("Laptop");
        await shot(page, "account-passkeys");

        await Promise.all([page.waitForURL(/\/auth\/ui\/sign-in/), page.click("text=Sign out")]);
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("text=Sign in with a passkey")]);
        expect(await page.textContent("main")).toContain(email);

        // The passkey sign-in is itself a fresh proof: removing needs no prompt.
        await Promise.all([page.waitForURL(/notice=passkey-removed/), page.click("#passkeys button:text('Remove')")]);
        expect(await page.textContent("main")).toContain("No passkeys yet.");
      }),
    TIMEOUT_MS,
  );

  test(
    "TOTP: turned on after a step-up prompt, with its QR code from this server; recovery codes shown once; a recovery code turns it off",
    () =>
      withProfile(false, async ({ page }) => {
        const email = uniqueEmail("totp");
        await signUp(page, email);
        skewMs = 301_000;
        await page.click("text=Set up an authenticator app");
        expect(await page.title()).toBe("Confirm it is you · Acme");
        await shot(page, "reauth");
        await page.fill("#field-password", PASSWORD);
        await page.click("form[action$='/reauth'] button[type=submit]");
        expect(await page.title()).toBe("Set up an authenticator app · Acme");
        expect(await page.getAttribute(".qr img", "src")).toMatch(/^data:image\/png;base64,/);
        await shot(page, "totp-setup");
        const secret = (await page.textContent("#totp-secret")) ?? "";
        const totp = (atMs: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: atMs });

        await page.fill("#field-code", totp(now()) === "000000" ? "111111" : "000000");
        await page.click("form[action$='/totp/confirm'] button");
        expect(await fieldError(page, "code")).toBe("The code is invalid or has expired");
        expect(await page.textContent("#totp-secret")).toBe(secret);
        await page.fill("#field-code", totp(now()));
        await page.click("form[action$='/totp/confirm'] button");
        const codes = await page.locator("#recovery-codes li").allTextContents();
        expect(codes).toHaveLength(10);
        await shot(page, "recovery-codes");

        await page.click("text=back to your account");
        expect(await page.textContent("main")).toContain("Signing in asks for a code");
        expect(await page.textContent("main")).not.toContain(codes[0] ?? "?");
        await page.fill("#field-disableCode", "aaaaa-bbbbb");
        await page.click("text=Turn two-step verification off");
        expect(await fieldError(page, "disableCode")).toBe("The code is invalid or has expired");
        await page.fill("#field-disableCode", codes[0] ?? "");
        await Promise.all([page.waitForURL(/notice=mfa-off/), page.click("text=Turn two-step verification off")]);
        expect(await page.textContent("#activity")).toContain("Two-step verification off");
      }),
    TIMEOUT_MS,
  );

  test(
    "email change with the code sent to the new address; the activity list shows it; every other session signed out at once",
    async () => {
      const other = await recordedProfile(browser);
      try {
        await withProfile(false, async ({ page }) => {
          const email = uniqueEmail("change");
          const newEmail = uniqueEmail("changed");
          await signUp(page, email);
          await page.fill("#field-newEmail", newEmail);
          await page.fill("#field-emailPassword", "not my password");
          await page.click("text=Change email");
          expect(await fieldError(page, "emailPassword")).toBe("The password is not right");
          await page.fill("#field-newEmail", newEmail);
          await page.fill("#field-emailPassword", PASSWORD);
          const before = smtp.received.length;
          await page.click("text=Change email");
          expect(await page.title()).toBe("Confirm your new email · Acme");
          const code = /\b(\d{6})\b/.exec(await mailTo(newEmail, /\b\d{6}\b/, before))?.[1] ?? "";
          await page.fill("#field-code", code);
          await Promise.all([page.waitForURL(/notice=email/), page.click("form[action$='/email/confirm'] button")]);
          expect(await page.textContent("main")).toContain(newEmail);
          expect(await page.textContent("#activity")).toContain("Email changed");

          await other.page.goto(`${site.origin}/auth/ui/sign-in`);
          await other.page.fill("#field-email", newEmail);
          await other.page.fill("#field-password", PASSWORD);
          await Promise.all([other.page.waitForURL(/account/), other.page.click("form[action$='/sign-in'] button")]);
          await page.reload();
          expect(await page.locator("#sessions tr").count()).toBe(2);
          await shot(page, "account-full");
          await Promise.all([page.waitForURL(/notice=sessions-revoked/), page.click("text=Sign out of every other session")]);
          expect(await page.locator("#sessions tr").count()).toBe(1);
          await other.page.reload();
          expect(new URL(other.page.url()).pathname).toBe("/auth/ui/sign-in");
        });
        expectOnlyOrigins(other.requests, [site.origin]);
      } finally {
        await other.context.close();
      }
    },
    TIMEOUT_MS,
  );

  test(
    "the step-up prompt takes an emailed code (a wrong one is shown by its field), and once TOTP is on a code from the app",
    () =>
      withProfile(false, async ({ page }) => {
        const email = uniqueEmail("reauth-code");
        await signUp(page, email);
        skewMs = 301_000;
        await page.click("text=Set up an authenticator app");
        expect(await page.title()).toBe("Confirm it is you · Acme");
        const before = smtp.received.length;
        await page.click("text=Email me a code");
        expect(await page.textContent("[role=status]")).toContain("A 6-digit code is on its way");
        const code = /\b(\d{6})\b/.exec(await mailTo(email, /\b\d{6}\b/, before))?.[1] ?? "";
        await page.fill("#field-emailCode", code === "000000" ? "111111" : "000000");
        await page.locator("#field-emailCode").press("Enter");
        expect(await fieldError(page, "emailCode")).toBe("The code is invalid or has expired");
        await shot(page, "reauth-email-code");
        await page.fill("#field-emailCode", code);
        await page.locator("#field-emailCode").press("Enter");
        expect(await page.title()).toBe("Set up an authenticator app · Acme");
        const secret = (await page.textContent("#totp-secret")) ?? "";
        const totp = () => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: now() });
        await page.fill("#field-code", totp());
        await page.click("form[action$='/totp/confirm'] button");
        await page.click("text=back to your account");

        // Later again, with MFA on: the prompt offers the authenticator app, and its code lets the change through.
        skewMs += 301_000;
        await page.goto(`${site.origin}/auth/ui/account`);
        await page.click("button[aria-label='Link single sign-on']");
        expect(await page.title()).toBe("Confirm it is you · Acme");
        await shot(page, "reauth-totp");
        await page.fill("#field-totpCode", totp() === "000000" ? "111111" : "000000");
        await page.locator("#field-totpCode").press("Enter");
        expect(await fieldError(page, "totpCode")).toBe("The code is invalid or has expired");
        await page.fill("#field-totpCode", totp());
        await page.locator("#field-totpCode").press("Enter");
        await page.waitForLoadState();
        expect(await page.title()).not.toBe("Confirm it is you · Acme");
      }),
    TIMEOUT_MS,
  );

  test(
    "link the provider from the account page after a step-up prompt, then unlink it",
    () =>
      withProfile(true, async ({ page }) => {
        const email = uniqueEmail("link");
        const account = idp.addAccount({ sub: `link-${crypto.randomUUID()}`, email: uniqueEmail("elsewhere"), email_verified: true });
        await signUp(page, email);
        skewMs = 301_000;
        await page.click("button[aria-label='Link single sign-on']");
        await page.fill("#field-password", PASSWORD);
        await page.click("form[action$='/reauth'] button[type=submit]");
        await finishAtProvider(page, account.sub);
        await page.waitForURL(/notice=linked/);
        expect(await page.textContent("[role=status]")).toBe("The provider was linked to your account.");
        expect(await page.textContent("#linked")).toContain(`linked as ${account.email}`);
        await Promise.all([page.waitForURL(/notice=unlinked/), page.click("button[aria-label='Unlink single sign-on']")]);
        expect(await page.textContent("#linked")).toContain("not linked");
      }),
    TIMEOUT_MS,
  );

  test(
    "an invitation accepted by the invited user, signed in: one button, and the membership is added",
    () =>
      withProfile(false, async ({ page }) => {
        const owner = await server.ctx.users.create({ email: uniqueEmail("owner"), emailVerified: true });
        const { accessToken } = await server.ctx.sessions.create(owner, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
        const team = await server.request("POST", "/auth/teams", { token: accessToken, body: { name: "Night Shift" } });
        const invitee = uniqueEmail("member");
        await signUp(page, invitee);
        const before = smtp.received.length;
        expect((await server.request("POST", "/auth/invitations", { token: accessToken, body: { email: invitee, teamId: team.body.id } })).status).toBe(201);
        const link = /(http:\/\/localhost:\d+\/accept-invitation\?token=[A-Za-z0-9_%-]+)/.exec(await mailTo(invitee, /accept-invitation/, before))?.[1] ?? "";
        await page.goto(link);
        expect(await page.textContent("h1")).toBe("You are invited to join Night Shift");
        expect(await page.locator("#field-password").count()).toBe(0);
        await shot(page, "accept-invitation-signed-in");
        await Promise.all([page.waitForURL(/\/auth\/ui\/account/), page.click("text=Accept the invitation")]);
        const members = await server.request("GET", `/auth/teams/${team.body.id}/members`, { token: accessToken });
        expect(members.body.map((m: { email: string }) => m.email)).toContain(invitee);
      }),
    TIMEOUT_MS,
  );
});
