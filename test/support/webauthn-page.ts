import { join, normalize } from "node:path";
import type { Browser, CDPSession, Page } from "playwright-core";

const BROWSER_LIB_DIR = join(import.meta.dir, "../../node_modules/@simplewebauthn/browser/esm");

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>passkey test page</title></head>
<body>
<script type="module">
  import { startAuthentication, startRegistration } from "/simplewebauthn/index.js";
  window.webauthn = { startAuthentication, startRegistration };
  document.body.dataset.ready = "true";
</script>
</body></html>`;

export type WebAuthnPage = { origin: string; port: number; stop(): Promise<void> };

/**
 * Serves, on one localhost origin, a page that loads @simplewebauthn/browser (its ESM files from node_modules)
 * and the auth app itself, so the page's fetches reach the server under test with the page's own origin.
 * `handle` is set after the server is built, because the server's WEBAUTHN_ORIGIN needs this port first.
 */
export function serveWebAuthnPage(): WebAuthnPage & { setHandler(handle: (request: Request) => Promise<Response>): void } {
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const http = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname === "/") return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
      if (url.pathname.startsWith("/simplewebauthn/")) {
        const relative = normalize(url.pathname.slice("/simplewebauthn/".length));
        if (relative.startsWith("..")) return new Response("not found", { status: 404 });
        const file = Bun.file(join(BROWSER_LIB_DIR, relative));
        if (!(await file.exists())) return new Response("not found", { status: 404 });
        return new Response(file, { headers: { "content-type": "text/javascript; charset=utf-8" } });
      }
      if (url.pathname.startsWith("/auth/") && handler) {
        // Elysia parses paths of a localhost URL reliably; the origin the browser sees is unchanged.
        return handler(new Request(`http://localhost${url.pathname}${url.search}`, request));
      }
      return new Response("not found", { status: 404 });
    },
  });
  const port = http.port ?? 0;
  return {
    port,
    origin: `http://localhost:${port}`,
    setHandler(handle) {
      handler = handle;
    },
    async stop() {
      await http.stop(true);
    },
  };
}

/**
 * A new tab of `browser` on the page served at `origin`, with Chromium's virtual CTAP2 authenticator attached over the
 * DevTools protocol: it creates and signs with real keys, with user verification.
 */
export async function openAuthenticatorPage(browser: Browser, origin: string): Promise<{ page: Page; cdp: CDPSession; authenticatorId: string }> {
  const page = await browser.newPage();
  await page.goto(origin);
  await page.waitForSelector("body[data-ready=true]", { state: "attached" });
  return { page, ...(await attachVirtualAuthenticator(page)) };
}

/** Chromium's virtual CTAP2 authenticator (resident keys, user verification) attached to `page` over DevTools. */
export async function attachVirtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  return { cdp, authenticatorId };
}
