import { expect } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { startSmtpServer } from "./smtp";

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
