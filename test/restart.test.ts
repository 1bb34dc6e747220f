import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { Secret, TOTP } from "otpauth";
import { type Browser, chromium, type Page } from "playwright-core";
import { serveWebAuthnPage, type WebAuthnPage } from "./support/webauthn-page";

/**
 * The embedded default across a restart: a real server process on a DATA_DIR, stopped and started again on it.
 * Every second factor's first use after a start must answer (issue 25: the TOTP path hung on PGlite's one connection
 * when the sealing key's first read went to the root handle from inside the code's transaction).
 */

const ENTRY = join(import.meta.dir, "..", "src", "index.ts");
const PASSWORD = "correct horse battery staple";
/** Each answer must come well within this; before the fix the MFA verify never answered. */
const ANSWER_WITHIN_MS = 10_000;

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

type Running = { process: Subprocess<"ignore", "pipe", "pipe">; base: string };

let dataDir: string;
let site: WebAuthnPage & { setHandler(handle: (request: Request) => Promise<Response>): void };
let running: Running | undefined;
let browser: Browser;
let page: Page;

/** The embedded default, whatever backends the test run itself was given. */
async function startServer(): Promise<Running> {
  const port = freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tmpdir(),
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    PASSWORD_HASH_MEMORY_KIB: "4096",
    PASSWORD_HASH_TIME_COST: "1",
    WEBAUTHN_ORIGIN: site.origin,
    WEBAUTHN_RP_ID: "localhost",
    BACKEND_TIMEOUT_MS: "3000",
  };
  const child = Bun.spawn(["bun", "run", ENTRY], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${await new Response(child.stderr).text()}`);
    const ok = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { process: child, base };
    await Bun.sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error("server did not become healthy within 60 s");
}

async function restart(): Promise<Running> {
  if (running) {
    running.process.kill("SIGTERM");
    await running.process.exited;
  }
  running = await startServer();
  const base = running.base;
  site.setHandler((request) => {
    const url = new URL(request.url);
    return fetch(`${base}${url.pathname}${url.search}`, { method: request.method, headers: request.headers, body: request.body });
  });
  return running;
}

type Answer = { status: number; body: Record<string, any> };

async function call(method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(`${running?.base}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** A code for `offsetSteps` time steps from now, taken away from a step's edge so the server sees the same step. */
async function totpCode(secret: string, offsetSteps = 0): Promise<string> {
  const intoStep = Date.now() % 30_000;
  if (intoStep > 27_000) await Bun.sleep(30_000 - intoStep + 200);
  const totp = new TOTP({ algorithm: "SHA1", digits: 6, period: 30, secret: Secret.fromBase32(secret) });
  return totp.generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "auth-restart-"));
  site = serveWebAuthnPage();
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  page = await browser.newPage();
}, 60_000);

afterAll(async () => {
  if (running) {
    running.process.kill("SIGTERM");
    await running.process.exited;
  }
  await browser?.close();
  await site?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("second factors across a restart on the embedded database", () => {
  test("TOTP, a passkey and a recovery code each sign in after the server restarts on the same DATA_DIR", async () => {
    await restart();
    const email = `restart-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const registered = await call("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(registered.status).toBe(201);
    const token = registered.body.accessToken as string;

    const setup = await call("POST", "/auth/mfa/totp/setup", { token });
    expect(setup.status).toBe(200);
    const secret = setup.body.secret as string;
    // The previous step's code (inside the window), so that the current step's is still unspent for the sign-in.
    const confirmed = await call("POST", "/auth/mfa/totp/confirm", { token, body: { code: await totpCode(secret, -1) } });
    expect(confirmed.status).toBe(200);
    const recoveryCodes = confirmed.body.recoveryCodes as string[];
    expect(recoveryCodes).toHaveLength(10);

    await page.goto(site.origin);
    await page.waitForSelector("body[data-ready=true]", { state: "attached" });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    const passkey = await page.evaluate(async (accessToken) => {
      const auth = { authorization: `Bearer ${accessToken}` };
      const optionsJSON = await (await fetch("/auth/passkeys/register/options", { method: "POST", headers: auth })).json();
      const { startRegistration } = (window as unknown as { webauthn: { startRegistration: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
      const response = await startRegistration({ optionsJSON });
      const res = await fetch("/auth/passkeys/register/verify", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ response }) });
      return res.status;
    }, token);
    expect(passkey).toBe(201);

    // TOTP, first use after a start.
    await restart();
    const challenge = await call("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(challenge.status).toBe(200);
    expect(challenge.body.mfaRequired).toBe(true);
    const verified = await call("POST", "/auth/mfa/verify", { body: { mfaToken: challenge.body.mfaToken, code: await totpCode(secret) } });
    expect(verified.status).toBe(200);
    expect(verified.body.user.email).toBe(email);

    // A passkey, first use after a start.
    await restart();
    const signedIn = await page.evaluate(async () => {
      const optionsRes = await fetch("/auth/passkeys/login/options", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      const { challengeId, options } = await optionsRes.json();
      const { startAuthentication } = (window as unknown as { webauthn: { startAuthentication: (o: { optionsJSON: unknown }) => Promise<unknown> } }).webauthn;
      const response = await startAuthentication({ optionsJSON: options });
      const res = await fetch("/auth/passkeys/login/verify", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ challengeId, response }) });
      return { status: res.status, body: await res.json() };
    });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user.email).toBe(email);

    // A recovery code, first use after a start.
    await restart();
    const second = await call("POST", "/auth/login", { body: { email, password: PASSWORD } });
    expect(second.body.mfaRequired).toBe(true);
    const recovered = await call("POST", "/auth/mfa/recover", { body: { mfaToken: second.body.mfaToken, recoveryCode: recoveryCodes[0] } });
    expect(recovered.status).toBe(200);
    expect(recovered.body.user.mfaEnabled).toBe(false);
  }, 180_000);
});
