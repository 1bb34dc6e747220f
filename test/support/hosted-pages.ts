import { expect } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { AuthServerOptions } from "../../src/config";
import type { AuthServerPorts } from "../../src/server";
import { launchChromium, type ServedOrigin, serveOrigin, toLocalhost } from "./browser";
import { createTestServer, type TestServer } from "./server";
import { startSmtpServer } from "./smtp";

/** What the hosted pages' Chromium tests share: a recorded browser profile, screenshots, the mails, origin checks. */
export const PASSWORD = "correct horse battery staple";
export const SHOTS = join(import.meta.dir, "..", "output", "hosted-ui");

export type RecordedProfile = { context: BrowserContext; page: Page; requests: string[]; cspViolations: string[] };

/** A browser profile (JavaScript off unless asked) whose every request is recorded, and whose CSP reports are kept. */
export async function recordedProfile(
  browser: Browser,
  options: { colorScheme?: "light" | "dark"; javaScriptEnabled?: boolean } = {},
): Promise<RecordedProfile> {
  mkdirSync(SHOTS, { recursive: true });
  const context = await browser.newContext({ javaScriptEnabled: options.javaScriptEnabled ?? false, colorScheme: options.colorScheme ?? "light" });
  const requests: string[] = [];
  const cspViolations: string[] = [];
  context.on("request", (r) => requests.push(r.url()));
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return { context, page, requests, cspViolations };
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const decoded = (raw: string) => raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");

/** The mail to `to` whose text matches, from the SMTP catcher; quoted-printable soft breaks undone. */
export function mailReader(smtp: Awaited<ReturnType<typeof startSmtpServer>>) {
  return async function mailTo(to: string, matching: RegExp, after = 0): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = smtp.received.slice(after).find((m) => m.to.includes(to) && matching.test(decoded(m.raw)));
      if (found) return decoded(found.raw);
      if (Date.now() > deadline) throw new Error(`no mail to ${to} matching ${matching}`);
      await Bun.sleep(20);
    }
  };
}

export const fieldError = (page: Page, name: string) => page.textContent(`#field-${name}-error`);

/** Every request the browser made went to one of `origins`. */
export function expectOnlyOrigins(requests: string[], origins: string[]) {
  expect(requests.length).toBeGreaterThan(0);
  for (const url of requests) expect(origins).toContain(new URL(url).origin);
}

/** A server on a real origin of its own, with a real SMTP catcher and Chromium: what every hosted-pages test starts. */
export type HostedSite = {
  smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  mailTo: ReturnType<typeof mailReader>;
  site: ServedOrigin;
  server: TestServer;
  browser: Browser;
  close(): Promise<void>;
};

/**
 * Starts a HostedSite. `settings` gets the site's origin (PUBLIC_URL and APP_URL are it, SMTP_URL the catcher) and may
 * start what depends on it first (an OpenID Connect provider whose callback is on the site).
 */
export async function startHostedSite(
  settings: (origin: string) => AuthServerOptions | Promise<AuthServerOptions>,
  ports: AuthServerPorts = {},
): Promise<HostedSite> {
  const smtp = await startSmtpServer();
  let handle: (request: Request) => Promise<Response> = async () => new Response("starting", { status: 503 });
  const site = serveOrigin("localhost", (request) => handle(toLocalhost(request)));
  const server = await createTestServer(
    { PUBLIC_URL: site.origin, APP_URL: site.origin, SMTP_URL: smtp.url, ...(await settings(site.origin)) },
    { mailer: undefined, ...ports },
  );
  handle = async (request) => server.app.handle(request);
  const browser = await launchChromium();
  return {
    smtp,
    mailTo: mailReader(smtp),
    site,
    server,
    browser,
    async close() {
      await browser.close();
      await site.stop();
      await server.close();
      await smtp.close();
    },
  };
}
