import { Elysia } from "elysia";
import { AuthError, coreError, errorResponse, errors } from "./errors";

export const MAX_BODY_BYTES = 64 * 1024;

const BODY_TYPES = new Set(["application/json", "application/x-www-form-urlencoded"]);

/**
 * JSON and form bodies only, 64 KiB at most, refused with a JSON 413 before anything reads them; a body streamed
 * without a length is counted from a copy, which stops reading past the limit. Elysia's own parsers then read it, so the
 * OpenAPI spec can describe both media types; unknown fields (`__proto__` included) are dropped by the routes' schemas.
 */
export const bodyParser = (seed: string, owns: (url: string) => boolean) =>
  new Elysia({ name: "auth.body", seed })
    .onRequest(async ({ request }) => {
      // Before routing, so only the paths we own are ours to refuse; the answer is made here, as the errors of a
      // request-wide hook would otherwise go to the host app's error handler.
      if (!owns(request.url)) return;
      try {
        await checkBody(request);
      } catch (error) {
        if (error instanceof AuthError) return errorResponse(error);
        throw error;
      }
    })
    .onTransform({ as: "scoped" }, ({ body }) => {
      const at = nulPath(body);
      if (at !== undefined) throw nulRefused(at);
    });

/** Throws the AuthError a request's URL or body earns before anything reads the body. */
async function checkBody(request: Request): Promise<void> {
  // A path segment or query value can only carry U+0000 percent-encoded.
  if (request.url.includes("%00")) throw nulRefused("");
  // Bun drops a GET's or HEAD's body (its `body` is null whatever the headers say).
  if (request.method === "GET" || request.method === "HEAD") return;
  const declared = request.headers.get("content-length");
  // A declared length is read first: asking for `request.body` makes a stream, which most requests never need.
  if (declared === null && request.body === null) return;
  // A chunked body, or a Request built in process, may not declare its length: then it is counted.
  const length = declared !== null ? Number(declared) : await streamedLength(request);
  if (length > MAX_BODY_BYTES) {
    // The rest of the body is never read, so the connection cannot carry another request: it closes after this answer.
    throw coreError("PAYLOAD_TOO_LARGE", { headers: { connection: "close" } });
  }
  if (length === 0) return;
  const declaredType = request.headers.get("content-type") ?? "";
  const type = declaredType.split(";")[0]?.trim().toLowerCase() ?? "";
  const parsedAs = BODY_TYPES.has(type) ? type : type.endsWith("+json") ? "application/json" : undefined;
  if (!parsedAs) throw coreError("UNSUPPORTED_MEDIA_TYPE");
  // Media types are case-insensitive (RFC 9110) but Elysia's parsers match them exactly: name the one they know.
  if (!declaredType.startsWith(parsedAs)) request.headers.set("content-type", parsedAs);
}

/** The length of a body sent without one declared, read from a copy only until it passes the limit: never more. */
async function streamedLength(request: Request): Promise<number> {
  const reader = (request.clone().body as ReadableStream<Uint8Array>).getReader();
  let length = 0;
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    length += chunk.value.byteLength;
    if (length > MAX_BODY_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return length;
}

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
