import { Elysia } from "elysia";
import { AuthError } from "./errors";

export const MAX_BODY_BYTES = 64 * 1024;

const BODY_TYPES = new Set(["application/json", "application/x-www-form-urlencoded"]);

/**
 * JSON and form bodies only, 64 KiB at most, refused before anything reads them. A body streamed without a length
 * is capped by the listening server's `maxRequestBodySize` (src/index.ts). Elysia's own parsers then read it, so the
 * OpenAPI spec can describe both media types; unknown fields (`__proto__` included) are dropped by the routes' schemas.
 */
export const bodyParser = (seed: string) =>
  new Elysia({ name: "auth.body", seed }).onRequest(async ({ request }) => {
    if (request.body === null) return;
    const declared = request.headers.get("content-length");
    // Over the wire Bun always knows the length (or caps a chunked body); a Request built in process may not say it.
    const length = declared !== null ? Number(declared) : (await request.clone().arrayBuffer()).byteLength;
    if (length > MAX_BODY_BYTES) throw new AuthError(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 64 KiB");
    if (length === 0) return;
    const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (!BODY_TYPES.has(type) && !type.endsWith("+json")) {
      throw new AuthError(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json or application/x-www-form-urlencoded");
    }
  });
