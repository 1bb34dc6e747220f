import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { designTokens } from "../src/branding";
import { ConfigError, loadConfig } from "../src/config";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 19: every email said "Auth", whatever the deployment, and its codes "expire soon".
let branded: TestServer;
let plain: TestServer;

beforeAll(async () => {
  [branded, plain] = await Promise.all([createTestServer({ APP_NAME: "Acme Cloud" }), createTestServer()]);
}, 60_000);

afterAll(() => Promise.all([branded.close(), plain.close()]));

describe("emails", () => {
  test("carry APP_NAME in their heading and signature, and say when a code expires", async () => {
    const email = uniqueEmail();
    expect((await branded.request("POST", "/auth/code/request", { body: { email } })).status).toBe(202);
    const mail = await branded.mailTo(email, /sign in/i);
    for (const body of [mail.html, mail.text]) {
      expect(body).toContain("Acme Cloud");
      expect(body).not.toMatch(/\bAuth\b/);
      expect(body).toContain("expires in 10 minutes");
      expect(body).not.toContain("expires soon");
    }
    expect(mail.text).toContain("This is an automated message from Acme Cloud.");

    const registered = uniqueEmail();
    const verify = await createTestServer({ APP_NAME: "Acme Cloud", REQUIRE_EMAIL_VERIFICATION: "true" });
    try {
      expect((await verify.request("POST", "/auth/register", { body: { email: registered, password: "correct horse battery staple" } })).status).toBe(202);
      const code = await verify.mailTo(registered, /verif/i);
      expect(code.text).toContain("Acme Cloud");
      expect(code.text).toContain("expires in 10 minutes");
    } finally {
      await verify.close();
    }
  });

  test("say `Auth` when APP_NAME is unset", async () => {
    const email = uniqueEmail();
    await plain.request("POST", "/auth/code/request", { body: { email } });
    expect((await plain.mailTo(email, /sign in/i)).text).toContain("This is an automated message from Auth.");
  });

  test("carry APP_LOGO_URL and BRAND_COLOR, from the same design tokens as the hosted pages' stylesheet", async () => {
    const server = await createTestServer({ APP_NAME: "Acme", APP_LOGO_URL: "https://cdn.acme.test/logo.png", BRAND_COLOR: "#0e7490" });
    try {
      const email = uniqueEmail("brand");
      await server.ctx.users.create({ email, emailVerified: true, passwordHash: await server.ctx.passwords.hash("correct horse battery staple") });
      expect((await server.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
      const mail = await server.mailTo(email, /reset/i);
      expect(mail.html).toContain('src="https://cdn.acme.test/logo.png"');
      // The action button is in the brand colour, its text in the colour that reads on it (white on this teal).
      expect(mail.html).toMatch(/<a[^>]*style="[^"]*background-color:#0e7490;color:#fff/);
      const page = await server.request("GET", "/auth/ui/sign-in");
      const sheet = (await server.request("GET", /href="(\/auth\/ui\/assets\/style\.css\?v=\w+)"/.exec(page.text)?.[1] ?? "")).text;
      expect(sheet).toContain("--brand:#0e7490");
      for (const token of [designTokens.light.background, designTokens.light.surface, designTokens.light.text]) {
        expect(mail.html).toContain(token);
        expect(sheet).toContain(token);
      }
    } finally {
      await server.close();
    }
  });

  test("APP_NAME must be one line of text", () => {
    expect(() => loadConfig({ APP_NAME: "Acme\nBcc: someone" })).toThrow(ConfigError);
    expect(() => loadConfig({ APP_NAME: "" })).toThrow(/APP_NAME/);
    expect(loadConfig({ APP_NAME: "  Acme  " }).APP_NAME).toBe("Acme");
  });
});
