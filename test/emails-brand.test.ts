import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

  test("APP_NAME must be one line of text", () => {
    expect(() => loadConfig({ APP_NAME: "Acme\nBcc: someone" })).toThrow(ConfigError);
    expect(() => loadConfig({ APP_NAME: "" })).toThrow(/APP_NAME/);
    expect(loadConfig({ APP_NAME: "  Acme  " }).APP_NAME).toBe("Acme");
  });
});
