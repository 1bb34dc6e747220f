import { Elysia } from "elysia";
import { AuthError } from "./errors";

export const MAX_BODY_BYTES = 64 * 1024;

const tooLarge = () => new AuthError(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 64 KiB");
const unsupported = () =>
  new AuthError(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json or application/x-www-form-urlencoded");
const malformed = () =>
  new AuthError(400, "VALIDATION_ERROR", "Malformed request body", [{ path: "", message: "Body could not be parsed" }]);

const POISONED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, (key, value) => (POISONED_KEYS.has(key) ? undefined : value));
  } catch {
    throw malformed();
  }
}

function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [key, value] of new URLSearchParams(text)) {
    if (POISONED_KEYS.has(key)) continue;
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { ...out };
}

async function readLimited(request: Request): Promise<string> {
  const body = request.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** JSON and form bodies only, 64 KiB at most, with prototype keys dropped before any route sees them. */
export const bodyParser = (seed: string) =>
  new Elysia({ name: "auth.body", seed })
  .onRequest(({ request }) => {
    const length = Number(request.headers.get("content-length") ?? 0);
    if (length > MAX_BODY_BYTES) throw tooLarge();
  })
  .onParse({ as: "global" }, async ({ request, contentType }) => {
    const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    const text = await readLimited(request);
    if (text.length === 0) return {};
    if (type === "application/json" || type.endsWith("+json")) return parseJson(text);
    if (type === "application/x-www-form-urlencoded") return parseForm(text);
    throw unsupported();
  });
