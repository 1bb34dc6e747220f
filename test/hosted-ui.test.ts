import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config";
import { setCookies } from "./support/cookies";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// The preload's default reaches only the first file of a run; these tests boot servers and browsers.
setDefaultTimeout(60_000);

/** The hosted pages over HTTP: what Chromium cannot show easily (headers, refusals, settings). */
const PASSWORD = "correct horse battery staple";
const ORIGIN = "http://localhost:3000";
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ TRUSTED_REDIRECT_ORIGINS: `${ORIGIN},https://shop.example.com` });
});
afterAll(() => server.close());

const signUpForm = (email: string) => ({ email, password: PASSWORD, confirmPassword: PASSWORD });

describe("pages", () => {
  test("the second step opened on its own (GET /auth/ui/mfa) starts from the first, keeping where to go after", async () => {
    const res = await server.request("GET", `/auth/ui/mfa?redirectTo=${encodeURIComponent(`${ORIGIN}/after`)}`);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get("location") ?? "", "http://x");
    expect(location.pathname).toBe("/auth/ui/sign-in");
    expect(location.searchParams.get("redirectTo")).toBe(`${ORIGIN}/after`);
    const bare = await server.request("GET", "/auth/ui/mfa");
    expect(bare.status).toBe(303);
    expect(bare.headers.get("location")).toBe("/auth/ui/sign-in");
  });

  test("HTML with a strict CSP, no framing, a same-origin referrer policy and a stylesheet from this server", async () => {
    const res = await server.request("GET", "/auth/ui/sign-in");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    // The sign-in page offers passkeys: it may run this server's one script file and fetch this server, nothing else.
    expect(csp).toContain("script-src 'self'; connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("referrer-policy")).toBe("same-origin");
    expect([...res.text.matchAll(/<script[^>]*>/g)].map((m) => m[0])).toEqual([expect.stringMatching(/^<script src="\/auth\/ui\/assets\/passkeys\.js\?v=\w+" defer="">$/)]);
    const script = /<script src="([^"]+)"/.exec(res.text)?.[1] ?? "";
    const js = await server.request("GET", script);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.text).toContain("navigator.credentials.get");
    // A page without passkeys runs no script at all.
    const forgot = await server.request("GET", "/auth/ui/forgot-password");
    expect(forgot.headers.get("content-security-policy")).not.toContain("script-src");
    expect(forgot.text).not.toContain("<script");
    expect(res.text).not.toMatch(/(src|href)="https?:\/\//);
    const css = /href="(\/auth\/ui\/assets\/style\.css\?v=\w+)"/.exec(res.text)?.[1] ?? "";
    const sheet = await server.request("GET", css);
    expect(sheet.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(sheet.text).toContain("prefers-color-scheme:dark");
    // Every input has a label pointing at it.
    for (const id of res.text.matchAll(/<input[^>]* id="([^"]+)"/g)) expect(res.text).toContain(`for="${id[1]}"`);
  });

  test("branding by APP_NAME, APP_LOGO_URL and BRAND_COLOR; a wrong value stops the start naming the variable", async () => {
    const branded = await createTestServer({ APP_NAME: "Acme", APP_LOGO_URL: "https://cdn.acme.test/logo.svg", BRAND_COLOR: "#ff0" });
    try {
      const res = await branded.request("GET", "/auth/ui/sign-in");
      expect(res.text).toContain("<title>Sign in · Acme</title>");
      expect(res.text).toContain('src="https://cdn.acme.test/logo.svg"');
      expect(res.headers.get("content-security-policy")).toContain("img-src 'self' data: https://cdn.acme.test");
      const css = /href="(\/auth\/ui\/assets\/style\.css\?v=\w+)"/.exec(res.text)?.[1] ?? "";
      const sheet = (await branded.request("GET", css)).text;
      expect(sheet).toContain("--brand:#ff0;--on-brand:#000000");
    } finally {
      await branded.close();
    }
    expect(() => loadConfig({ BRAND_COLOR: "red" })).toThrow(/BRAND_COLOR/);
    expect(() => loadConfig({ APP_LOGO_URL: "javascript:alert(1)" })).toThrow(/APP_LOGO_URL/);
    expect(() => loadConfig({ HOSTED_UI: "maybe" })).toThrow(/HOSTED_UI/);
  });

  test("a sign-in from the page sets the session cookies and goes to redirectTo when trusted, else to the account page", async () => {
    const email = uniqueEmail("ui");
    const trusted = await server.request("POST", "/auth/ui/sign-up", {
      form: { ...signUpForm(email), redirectTo: "https://shop.example.com/welcome" },
      headers: { origin: ORIGIN },
    });
    expect(trusted.status).toBe(303);
    expect(trusted.headers.get("location")).toBe("https://shop.example.com/welcome");
    expect([...setCookies(trusted.headers).keys()].sort()).toEqual(["auth_at", "auth_rt"]);
    for (const redirectTo of ["https://evil.example.com/", "javascript:alert(1)", "//evil.example.com", "https://user@shop.example.com/"]) {
      const res = await server.request("POST", "/auth/ui/sign-in", { form: { email, password: PASSWORD, redirectTo }, headers: { origin: ORIGIN } });
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toBe("/auth/ui/account");
    }
  });

  test("errors show by their message next to the field, never as JSON; the status is the API's", async () => {
    const res = await server.request("POST", "/auth/ui/sign-up", { form: { email: "not-an-email", password: PASSWORD }, headers: { origin: ORIGIN } });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toMatch(/<p class="error" id="field-email-error">[^<]+<\/p>/);
    expect(res.text).toContain('aria-invalid="true"');
    const missing = await server.request("POST", "/auth/ui/sign-in", { form: {}, headers: { origin: ORIGIN } });
    expect(missing.status).toBe(400);
    expect(missing.text).toContain("Enter your email address");
    expect(missing.text).toContain("Enter your password");
  });

  test("a form posted from another origin (or with Origin: null) is refused with an HTML page and changes nothing", async () => {
    const email = uniqueEmail("csrf");
    for (const headers of [{ origin: "https://evil.example.com" }, { origin: "null" }, {}] as Record<string, string>[]) {
      const res = await server.request("POST", "/auth/ui/sign-up", { form: signUpForm(email), headers });
      expect(res.status).toBe(403);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.text).toContain("does not come from a trusted origin");
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
    const sameOrigin = await server.request("POST", "/auth/ui/sign-up", { form: signUpForm(email), headers: { "sec-fetch-site": "same-origin" } });
    expect(sameOrigin.status).toBe(303);
  });

  test("an account form posted from another origin with the victim's session cookie is refused and changes nothing", async () => {
    const email = uniqueEmail("csrf-account");
    const signedUp = await server.request("POST", "/auth/ui/sign-up", { form: signUpForm(email), headers: { origin: ORIGIN } });
    const cookie = signedUp.headers
      .getSetCookie()
      .map((line) => line.split(";")[0])
      .join("; ");
    for (const path of ["/auth/ui/account/profile", "/auth/ui/account/sessions/revoke-others", "/auth/ui/account/delete"]) {
      const res = await server.request("POST", path, { form: { firstName: "Mallory", deletePassword: "x" }, headers: { cookie, origin: "https://evil.example.com" } });
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
      expect(res.text).toContain("does not come from a trusted origin");
    }
    const user = await server.ctx.users.findByEmail(email);
    expect(user?.firstName ?? null).toBeNull();
    const own = await server.request("POST", "/auth/ui/account/profile", { form: { firstName: "Ada", lastName: "" }, headers: { cookie, origin: ORIGIN } });
    expect(own.status).toBe(303);
    expect((await server.ctx.users.findByEmail(email))?.firstName).toBe("Ada");
  });

  test("an expired access cookie is renewed from the refresh cookie when a page loads", async () => {
    const email = uniqueEmail("renew");
    const signedUp = await server.request("POST", "/auth/ui/sign-up", { form: signUpForm(email), headers: { origin: ORIGIN } });
    const refresh = setCookies(signedUp.headers).get("auth_rt")?.value;
    const page = await server.request("GET", "/auth/ui/account", { headers: { cookie: `auth_rt=${refresh}` } });
    expect(page.status).toBe(200);
    expect(page.text).toContain(email);
    const renewed = setCookies(page.headers);
    expect(renewed.get("auth_at")?.value).toEqual(expect.any(String));
    expect(renewed.get("auth_rt")?.value).not.toBe(refresh);
  });
});

describe("the emailed link paths and /", () => {
  test("when APP_URL is this server, / leads to sign-in and PASSWORD_RESET_PATH to the reset page, query kept", async () => {
    const root = await server.request("GET", "/");
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/auth/ui/sign-in");
    const reset = await server.request("GET", "/reset-password?token=abc");
    expect(reset.headers.get("location")).toBe("/auth/ui/reset-password?token=abc");
    const page = await server.request("GET", "/auth/ui/reset-password?token=abc");
    expect(page.status).toBe(400);
    expect(page.text).toContain("This reset link is invalid or has expired.");
  });

  test("when the app lives elsewhere they are the app's, not ours", async () => {
    const elsewhere = await createTestServer({ APP_URL: "https://app.example.com", PUBLIC_URL: ORIGIN });
    try {
      expect((await elsewhere.request("GET", "/")).status).toBe(404);
      expect((await elsewhere.request("GET", "/reset-password?token=abc")).status).toBe(404);
      expect((await elsewhere.request("GET", "/auth/ui/sign-in")).status).toBe(200);
      const signedUp = await elsewhere.request("POST", "/auth/ui/sign-up", {
        form: signUpForm(uniqueEmail()),
        headers: { origin: ORIGIN },
      });
      expect(signedUp.headers.get("location")).toBe("https://app.example.com");
    } finally {
      await elsewhere.close();
    }
  });
});

test("HOSTED_UI=false turns every page and link path off", async () => {
  const off = await createTestServer({ HOSTED_UI: "false" });
  try {
    for (const path of ["/auth/ui/sign-in", "/auth/ui/sign-up", "/auth/ui/account", "/auth/ui/forgot-password", "/", "/reset-password?token=x"]) {
      expect((await off.request("GET", path)).status).toBe(404);
    }
    expect((await off.request("POST", "/auth/ui/sign-in", { form: {}, headers: { origin: ORIGIN } })).status).toBe(404);
    expect((await off.request("GET", "/health")).status).toBe(200);
  } finally {
    await off.close();
  }
});
