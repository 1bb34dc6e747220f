import type { Config } from "./config";
import { coreError } from "./errors";

const DEFAULT_VERIFY_URLS = {
  turnstile: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
  hcaptcha: "https://api.hcaptcha.com/siteverify",
  recaptcha: "https://www.google.com/recaptcha/api/siteverify",
} as const;

const failed = () => coreError("CAPTCHA_FAILED");

/**
 * Turnstile, hCaptcha and reCAPTCHA share one siteverify shape: POST secret, response (and remoteip), read `success`.
 * Does nothing when CAPTCHA_PROVIDER is unset.
 */
export async function assertCaptcha(config: Config, token: unknown, ip: string | null): Promise<void> {
  if (!config.CAPTCHA_PROVIDER) return;
  if (typeof token !== "string" || token.length === 0 || token.length > 4096) throw failed();
  const url = config.CAPTCHA_VERIFY_URL ?? DEFAULT_VERIFY_URLS[config.CAPTCHA_PROVIDER];
  const form = new URLSearchParams({ secret: config.CAPTCHA_SECRET ?? "", response: token });
  if (ip) form.set("remoteip", ip);
  try {
    const res = await fetch(url, { method: "POST", body: form, signal: AbortSignal.timeout(config.BACKEND_TIMEOUT_MS) });
    const result = (await res.json()) as { success?: unknown };
    if (result.success !== true) throw failed();
  } catch {
    throw failed();
  }
}
