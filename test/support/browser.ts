import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium, headless, with nothing that would reach the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export type ServedOrigin = { origin: string; port: number; stop(): Promise<void> };

/**
 * A listening HTTP server on 127.0.0.1, seen by the browser as `http://<host>:<port>`: `localhost` and `127.0.0.1`
 * are different sites to a browser, which lets one machine stand for a same-site and a cross-site origin.
 */
export function serveOrigin(host: "localhost" | "127.0.0.1", fetch: (request: Request) => Response | Promise<Response>): ServedOrigin {
  const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
  const port = http.port ?? 0;
  return { origin: `http://${host}:${port}`, port, stop: () => http.stop(true) };
}

/** The same request addressed to `http://localhost` (Elysia parses those paths reliably); headers and body are kept. */
export function toLocalhost(request: Request): Request {
  const url = new URL(request.url);
  return new Request(`http://localhost${url.pathname}${url.search}`, request);
}

export const html = (body: string, headers: Record<string, string> = {}) =>
  new Response(`<!doctype html><html><head><meta charset="utf-8"><title>test page</title></head><body>${body}</body></html>`, {
    headers: { "content-type": "text/html; charset=utf-8", ...headers },
  });
