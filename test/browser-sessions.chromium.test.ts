import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { html, launchChromium, type ServedOrigin, serveOrigin, toLocalhost } from "./support/browser";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

/**
 * Browser sessions in a real Chromium, against listening servers: the auth server on http://localhost:A (its
 * PUBLIC_URL), the app on http://localhost:B (in CORS_ORIGINS), a stranger on the same site (http://localhost:C, not
 * trusted) and one on another site (http://127.0.0.1:D).
 */
const PASSWORD = "correct horse battery staple";

let server: TestServer;
let auth: ServedOrigin;
let app: ServedOrigin;
let sameSiteStranger: ServedOrigin;
let crossSiteStranger: ServedOrigin;
let browser: Browser;
/** What reached the auth server: whether each request carried the session cookie, and from which Origin. */
const seen: Array<{ method: string; path: string; cookie: boolean; origin: string | null; refreshCookie?: string }> = [];
/** When set, refreshes are held until this many have arrived, so they truly race with the same cookie. */
let refreshBarrier: { size: number; waiting: Array<() => void> } | undefined;

async function holdAtBarrier(): Promise<void> {
  const barrier = refreshBarrier;
  if (!barrier) return;
  await new Promise<void>((release) => {
    barrier.waiting.push(release);
    if (barrier.waiting.length >= barrier.size) for (const r of barrier.waiting) r();
  });
}

const formPage = (action: string) =>
  html(`<form id="forged" method="post" action="${action}"><input type="hidden" name="firstName" value="Mallory"><button>go</button></form>`);

beforeAll(async () => {
  let handle: (request: Request) => Promise<Response> = async () => new Response("starting", { status: 503 });
  auth = serveOrigin("localhost", async (request) => {
    const url = new URL(request.url);
    const cookie = request.headers.get("cookie") ?? "";
    const entry: (typeof seen)[number] = { method: request.method, path: url.pathname, cookie: /(^|;\s*)auth_at=/.test(cookie), origin: request.headers.get("origin") };
    const refreshCookie = /(?:^|;\s*)auth_rt=([^;]+)/.exec(cookie)?.[1];
    if (url.pathname === "/auth/refresh" && refreshCookie) entry.refreshCookie = refreshCookie;
    seen.push(entry);
    if (url.pathname === "/auth/refresh" && request.method === "POST") await holdAtBarrier();
    return handle(toLocalhost(request));
  });
  app = serveOrigin("localhost", () => html("<h1>app</h1>"));
  sameSiteStranger = serveOrigin("localhost", (request) =>
    new URL(request.url).pathname === "/logout" ? formPage(`${auth.origin}/auth/logout`) : formPage(`${auth.origin}/auth/me`),
  );
  crossSiteStranger = serveOrigin("127.0.0.1", (request) =>
    new URL(request.url).pathname === "/logout" ? formPage(`${auth.origin}/auth/logout`) : formPage(`${auth.origin}/auth/me`),
  );
  server = await createTestServer({ PUBLIC_URL: auth.origin, APP_URL: app.origin, CORS_ORIGINS: app.origin });
  handle = async (request) => server.app.handle(request);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([auth, app, sameSiteStranger, crossSiteStranger].map((o) => o?.stop()));
  await server?.close();
});

type Answer = { status: number; body: unknown };

/** A fetch from the page, with the session's cookies; a network or CORS failure answers status 0. */
function fetchFrom(page: Page, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  return page.evaluate(
    async ({ url, init }) => {
      try {
        const res = await fetch(url, {
          method: init.method ?? "GET",
          credentials: "include",
          headers: { ...(init.body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      } catch (error) {
        return { status: 0, body: String(error) };
      }
    },
    { url: `${auth.origin}${path}`, init },
  );
}

async function signedInContext(): Promise<{ context: BrowserContext; page: Page; email: string; userId: string }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(app.origin);
  const email = uniqueEmail("chromium");
  const res = await fetchFrom(page, "/auth/register", { method: "POST", body: { email, password: PASSWORD }, headers: { "x-auth-cookies": "1" } });
  expect(res.status).toBe(201);
  return { context, page, email, userId: (res.body as { user: { id: string } }).user.id };
}

describe("Chromium", () => {
  test("a page on a trusted origin signs in with credentials: 'include'; the tokens stay out of reach of its script", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(app.origin);
      const email = uniqueEmail("chromium");
      const res = await fetchFrom(page, "/auth/register", { method: "POST", body: { email, password: PASSWORD }, headers: { "x-auth-cookies": "1" } });
      expect(res.status).toBe(201);
      expect(res.body).not.toHaveProperty("accessToken");
      expect(res.body).not.toHaveProperty("refreshToken");
      expect(await page.evaluate(() => document.cookie)).toBe("");
      const cookies = await context.cookies(auth.origin);
      expect(cookies.map((c) => c.name).sort()).toEqual(["auth_at", "auth_rt"]);
      for (const c of cookies) expect([c.httpOnly, c.sameSite, c.path, c.domain]).toEqual([true, "Lax", "/", "localhost"]);

      const me = await fetchFrom(page, "/auth/me");
      expect(me.status).toBe(200);
      expect((me.body as { email: string }).email).toBe(email);
      const patched = await fetchFrom(page, "/auth/me", { method: "PATCH", body: { firstName: "Ada" } });
      expect(patched.status).toBe(200);
      // A plain sign-in, no cookie asked for: the body carries the tokens as before, and no cookie changes.
      const before = (await context.cookies(auth.origin)).find((c) => c.name === "auth_rt")?.value;
      const bearer = await fetchFrom(page, "/auth/login", { method: "POST", body: { email, password: PASSWORD } });
      expect(bearer.status).toBe(200);
      expect(bearer.body).toHaveProperty("accessToken");
      expect((await context.cookies(auth.origin)).find((c) => c.name === "auth_rt")?.value).toBe(before);

      expect((await fetchFrom(page, "/auth/logout", { method: "POST" })).status).toBe(204);
      expect(await context.cookies(auth.origin)).toEqual([]);
      expect((await fetchFrom(page, "/auth/me")).status).toBe(401);
    } finally {
      await context.close();
    }
  });

  test("two tabs refresh at once, with the same refresh cookie, and both stay signed in", async () => {
    const { context, page, userId } = await signedInContext();
    try {
      const second = await context.newPage();
      await second.goto(app.origin);
      const before = (await context.cookies(auth.origin)).find((c) => c.name === "auth_rt")?.value;
      const sentBefore = seen.length;
      refreshBarrier = { size: 2, waiting: [] };
      const [a, b] = await Promise.all([fetchFrom(page, "/auth/refresh", { method: "POST" }), fetchFrom(second, "/auth/refresh", { method: "POST" })]);
      refreshBarrier = undefined;
      expect([a.status, b.status]).toEqual([200, 200]);
      const raced = seen.slice(sentBefore).filter((r) => r.path === "/auth/refresh");
      expect(raced.map((r) => r.refreshCookie)).toEqual([before, before]);
      const after = (await context.cookies(auth.origin)).find((c) => c.name === "auth_rt")?.value;
      expect(after).not.toBe(before);
      for (const tab of [page, second]) {
        const me = await fetchFrom(tab, "/auth/me");
        expect(me.status).toBe(200);
        expect((me.body as { id: string }).id).toBe(userId);
      }
      // The chain goes on: the next refresh of either tab works, and it is still one session.
      expect((await fetchFrom(second, "/auth/refresh", { method: "POST" })).status).toBe(200);
      const sessions = await fetchFrom(page, "/auth/sessions");
      expect(sessions.body).toHaveLength(1);
    } finally {
      await context.close();
    }
  });

  test("a page on another origin of the same site cannot use the session: no read, and its forged form is refused", async () => {
    const { context, page } = await signedInContext();
    try {
      const stranger = await context.newPage();
      await stranger.goto(sameSiteStranger.origin);
      const read = await fetchFrom(stranger, "/auth/me");
      expect(read.status).toBe(0); // CORS refused: no Access-Control-Allow-Origin for this origin
      const write = await fetchFrom(stranger, "/auth/me", { method: "PATCH", body: { firstName: "Mallory" } });
      expect(write.status).toBe(0); // the preflight fails, so the PATCH is never sent

      // A plain form can be sent without a preflight, and the browser attaches the cookie (same site): the server refuses it.
      await stranger.goto(`${sameSiteStranger.origin}/logout`);
      const sentBefore = seen.length;
      await Promise.all([stranger.waitForNavigation(), stranger.click("button")]);
      const forged = seen.slice(sentBefore).find((r) => r.path === "/auth/logout");
      expect(forged).toEqual({ method: "POST", path: "/auth/logout", cookie: true, origin: sameSiteStranger.origin });
      expect(await stranger.textContent("body")).toContain("CSRF_REJECTED");

      expect((await fetchFrom(page, "/auth/me")).status).toBe(200);
    } finally {
      await context.close();
    }
  });

  test("a page on another site cannot use the session: the browser does not even send the cookie", async () => {
    const { context, page } = await signedInContext();
    try {
      const stranger = await context.newPage();
      await stranger.goto(crossSiteStranger.origin);
      const sentBefore = seen.length;
      expect((await fetchFrom(stranger, "/auth/me")).status).toBe(0);
      await stranger.goto(`${crossSiteStranger.origin}/logout`);
      await Promise.all([stranger.waitForNavigation(), stranger.click("button")]);
      const requests = seen.slice(sentBefore);
      expect(requests.length).toBeGreaterThanOrEqual(2);
      for (const r of requests) expect(r.cookie).toBe(false);
      expect(await stranger.textContent("body")).toContain("UNAUTHORIZED");
      expect((await fetchFrom(page, "/auth/me")).status).toBe(200);
    } finally {
      await context.close();
    }
  });
});
