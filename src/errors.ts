import { DrizzleQueryError } from "drizzle-orm";
import { Elysia } from "elysia";

export type ErrorDetail = { path: string; message: string };

/** The one error type of the server: a status, a stable machine code and a message safe to show. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** Postgres or Redis could not be reached: always 503, never the driver's message. */
export class UnavailableError extends AuthError {
  constructor(readonly part: "db" | "kv") {
    super(503, "UNAVAILABLE", "The service is temporarily unavailable");
  }
}

export const errors = {
  validation: (details: ErrorDetail[]) => new AuthError(400, "VALIDATION_ERROR", "Invalid request", details),
  unauthorized: (message = "Authentication required") => new AuthError(401, "UNAUTHORIZED", message),
  forbidden: (message = "Not allowed") => new AuthError(403, "FORBIDDEN", message),
  notFound: (message = "Not found") => new AuthError(404, "NOT_FOUND", message),
  rateLimited: (retryAfterS: number) =>
    new AuthError(429, "RATE_LIMITED", "Too many requests", undefined, {
      "retry-after": String(Math.max(1, Math.ceil(retryAfterS))),
    }),
  invalidCode: () => new AuthError(400, "INVALID_CODE", "The code is invalid or has expired"),
  invalidCredentials: () => new AuthError(401, "INVALID_CREDENTIALS", "Email or password is incorrect"),
  sessionRevoked: () => new AuthError(401, "SESSION_REVOKED", "The session has been revoked"),
  /** Every sign-in path of a banned account (asked only once its credential proved right, so it names nobody). */
  userBanned: () => new AuthError(403, "USER_BANNED", "This account is banned"),
};

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  // A statement cancelled by its deadline (statement_timeout, or ours): the backend is too slow to count on.
  "57014",
  "57P01",
  "57P03",
  "53300",
]);

/** True when an error means a backend is down rather than that our request was wrong. */
export function isConnectionError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown; name?: unknown };
    if (typeof e.code === "string" && CONNECTION_ERROR_CODES.has(e.code)) return true;
    if (typeof e.message === "string" && /connection (is )?closed|connect ECONNREFUSED|Connection is closed|timed out|write after end|Stream isn't writeable/i.test(e.message)) return true;
    if (e.name === "MaxRetriesPerRequestError") return true;
    current = e.cause;
  }
  return false;
}

type ValidationIssue = { path?: unknown; message?: unknown; summary?: unknown; property?: unknown };

function detailsFromValidation(error: unknown): ErrorDetail[] {
  const all = (error as { all?: ValidationIssue[] }).all;
  if (!Array.isArray(all) || all.length === 0) return [{ path: "", message: "Invalid request" }];
  return all.slice(0, 20).map((issue) => {
    const rawPath = issue.path;
    let path = "";
    if (Array.isArray(rawPath)) path = rawPath.map((p) => (typeof p === "object" && p ? String((p as { key?: unknown }).key) : String(p))).join(".");
    else if (typeof rawPath === "string") path = rawPath.replace(/^\//, "").replaceAll("/", ".");
    const message = typeof issue.message === "string" ? issue.message : typeof issue.summary === "string" ? issue.summary : "Invalid value";
    return { path, message };
  });
}

export type ErrorLogger = (event: { error: unknown; path: string }) => void;

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

/** The answer an AuthError makes: `{code, message[, details]}` with its status and headers. */
export function errorResponse(error: AuthError): Response {
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  if (error.details) body.details = error.details;
  return json(error.status, body, error.headers);
}

/**
 * Turns every error of the server's own routes into `{code, message[, details]}` with the contract's status. Scoped:
 * the errors of a host app that mounts us keep the host's own shape.
 */
export function errorHandler(seed: string, logUnexpected: ErrorLogger) {
  return new Elysia({ name: "auth.errors", seed }).onError({ as: "scoped" }, ({ code, error: raised, request }) => {
    // Elysia wraps what a parser throws; our own parser's errors (413, 415, 400) must keep their status.
    const error = code === "PARSE" && (raised as Error).cause instanceof AuthError ? (raised as Error).cause : raised;
    if (error instanceof AuthError) return errorResponse(error);
    switch (code) {
      case "VALIDATION":
        return json(400, { code: "VALIDATION_ERROR", message: "Invalid request", details: detailsFromValidation(error) });
      case "PARSE":
        return json(400, { code: "VALIDATION_ERROR", message: "Malformed request body", details: [{ path: "", message: "Body could not be parsed" }] });
      case "NOT_FOUND":
        return json(404, { code: "NOT_FOUND", message: "Not found" });
      case "INVALID_COOKIE_SIGNATURE":
        return json(400, { code: "VALIDATION_ERROR", message: "Invalid request" });
    }
    if (isConnectionError(error)) return json(503, { code: "UNAVAILABLE", message: "The service is temporarily unavailable" });
    const status = (error as { status?: unknown }).status;
    if (typeof status === "number" && status >= 400 && status < 500) {
      return json(status, { code: status === 413 ? "PAYLOAD_TOO_LARGE" : status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : "BAD_REQUEST", message: "Bad request" });
    }
    logUnexpected({ error, path: new URL(request.url).pathname });
    return json(500, { code: "INTERNAL_ERROR", message: "Something went wrong" });
  });
}

/**
 * An error for a log line: its name and message, and for a failed query the database's own message and the SQL,
 * never the query's parameters (they hold emails, token hashes and other user data).
 */
export function describeError(error: unknown): string {
  if (error instanceof DrizzleQueryError) return `${error.cause ? describeError(error.cause) : "query failed"} (in: ${error.query})`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
