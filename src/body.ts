import { Elysia } from "elysia";
import { AuthError, errors } from "./errors";

export const MAX_BODY_BYTES = 64 * 1024;

const BODY_TYPES = new Set(["application/json", "application/x-www-form-urlencoded"]);

/**
 * JSON and form bodies only, 64 KiB at most, refused before anything reads them. A body streamed without a length
 * is capped by the listening server's `maxRequestBodySize` (src/index.ts). Elysia's own parsers then read it, so the
 * OpenAPI spec can describe both media types; unknown fields (`__proto__` included) are dropped by the routes' schemas.
 */
export const bodyParser = (seed: string) =>
  new Elysia({ name: "auth.body", seed })
    .onRequest(async ({ request }) => {
      // A path segment or query value can only carry U+0000 percent-encoded.
      if (request.url.includes("%00")) throw nulRefused("");
      if (request.body === null) return;
      const declared = request.headers.get("content-length");
      // Over the wire Bun always knows the length (or caps a chunked body); a Request built in process may not say it.
      const length = declared !== null ? Number(declared) : (await request.clone().arrayBuffer()).byteLength;
      if (length > MAX_BODY_BYTES) throw new AuthError(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 64 KiB");
      if (length === 0) return;
      const declaredType = request.headers.get("content-type") ?? "";
      const type = declaredType.split(";")[0]?.trim().toLowerCase() ?? "";
      const parsedAs = BODY_TYPES.has(type) ? type : type.endsWith("+json") ? "application/json" : undefined;
      if (!parsedAs) throw new AuthError(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json or application/x-www-form-urlencoded");
      // Media types are case-insensitive (RFC 9110) but Elysia's parsers match them exactly: name the one they know.
      if (!declaredType.startsWith(parsedAs)) request.headers.set("content-type", parsedAs);
    })
    .onTransform({ as: "global" }, ({ body }) => {
      const at = nulPath(body);
      if (at !== undefined) throw nulRefused(at);
    });

/**
 * Postgres text cannot hold U+0000 (the query fails), and no field of this API has a use for it, so it is refused
 * at the door, before any handler runs and changes anything: 400 VALIDATION_ERROR naming the field.
 */
const nulRefused = (path: string) => errors.validation([{ path, message: "must not contain the NUL character (U+0000)" }]);

/** The path of the first string in a parsed body that holds U+0000; walked without recursion, as JSON may nest deep. */
function nulPath(body: unknown): string | undefined {
  if (body === undefined) return undefined; // GET and friends: nothing to walk
  const stack: Array<[unknown, string]> = [[body, ""]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, path] = next;
    if (typeof value === "string") {
      if (value.includes("\0")) return path;
    } else if (value !== null && typeof value === "object") {
      for (const [key, child] of Object.entries(value)) {
        const childPath = path ? `${path}.${key}` : key;
        if (key.includes("\0")) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return undefined;
}
