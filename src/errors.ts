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
    super(CORE_ERRORS.UNAVAILABLE.status, "UNAVAILABLE", CORE_ERRORS.UNAVAILABLE.message);
  }
}

/** One error code: its one status and its message (a call may say more precisely why, never a secret). */
export type ErrorSpec = { status: number; message: string };
/** A plugin's or the core's codes: `CODE -> {status, message}`, each code declared once. */
export type ErrorCatalog = Record<string, ErrorSpec>;
export type ErrorExtras = { message?: string; details?: ErrorDetail[]; headers?: Record<string, string> };

/** A function that makes the catalog's errors by code: `raise("CODE")` is an AuthError with the code's status. */
export function errorsFrom<const C extends ErrorCatalog>(catalog: C) {
  return (code: keyof C & string, extras: ErrorExtras = {}) => {
    const spec = catalog[code] as ErrorSpec;
    return new AuthError(spec.status, code, extras.message ?? spec.message, extras.details, extras.headers);
  };
}

/** The core's codes: every one a client can get from the core or from the one error handler below. */
export const CORE_ERRORS = {
  VALIDATION_ERROR: { status: 400, message: "Invalid request" },
  BAD_REQUEST: { status: 400, message: "Bad request" },
  CAPTCHA_FAILED: { status: 400, message: "The captcha check failed" },
  INVALID_CODE: { status: 400, message: "The code is invalid or has expired" },
  WEAK_PASSWORD: { status: 400, message: "The password is too weak" },
  UNAUTHORIZED: { status: 401, message: "Authentication required" },
  INVALID_CREDENTIALS: { status: 401, message: "Email or password is incorrect" },
  INVALID_TOKEN: { status: 401, message: "The access token is invalid or has expired" },
  INVALID_REFRESH_TOKEN: { status: 401, message: "The refresh token is invalid or has expired" },
  REFRESH_TOKEN_REUSED: { status: 401, message: "The refresh token was already used; the session has been revoked" },
  SESSION_REVOKED: { status: 401, message: "The session has been revoked" },
  TEAM_CLAIM_REVOKED: { status: 401, message: "The team in this token is no longer yours; refresh to get a new token" },
  FORBIDDEN: { status: 403, message: "Not allowed" },
  USER_BANNED: { status: 403, message: "This account is banned" },
  CSRF_REJECTED: { status: 403, message: "This request uses the browser session but does not come from a trusted origin" },
  REAUTH_REQUIRED: { status: 403, message: "Confirm it is you first (POST /auth/reauth), then try again" },
  NOT_FOUND: { status: 404, message: "Not found" },
  CONFLICT: { status: 409, message: "Conflict" },
  EMAIL_TAKEN: { status: 409, message: "This email is already registered" },
  USERNAME_TAKEN: { status: 409, message: "This username is taken" },
  NOT_ANONYMOUS: { status: 409, message: "Only a guest account can be upgraded" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "The request body is larger than 64 KiB" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "Send application/json or application/x-www-form-urlencoded" },
  RATE_LIMITED: { status: 429, message: "Too many requests" },
  INTERNAL_ERROR: { status: 500, message: "Something went wrong" },
  UNAVAILABLE: { status: 503, message: "The service is temporarily unavailable" },
} as const satisfies ErrorCatalog;

export type CoreErrorCode = keyof typeof CORE_ERRORS;
/** Makes one of the core's errors by its code. */
export const coreError = errorsFrom(CORE_ERRORS);

export const errors = {
  validation: (details: ErrorDetail[]) => coreError("VALIDATION_ERROR", { details }),
  unauthorized: (message?: string) => coreError("UNAUTHORIZED", { message }),
  forbidden: (message?: string) => coreError("FORBIDDEN", { message }),
  notFound: (message?: string) => coreError("NOT_FOUND", { message }),
  rateLimited: (retryAfterS: number) => coreError("RATE_LIMITED", { headers: { "retry-after": String(Math.max(1, Math.ceil(retryAfterS))) } }),
  invalidCode: () => coreError("INVALID_CODE"),
  invalidCredentials: () => coreError("INVALID_CREDENTIALS"),
  sessionRevoked: () => coreError("SESSION_REVOKED"),
  /** Every sign-in path of a banned account (asked only once its credential proved right, so it names nobody). */
  userBanned: () => coreError("USER_BANNED"),
};

/** An answer of the error handler that is not an AuthError, shaped from the catalog. */
function answer(code: CoreErrorCode, extras: { message?: string; details?: ErrorDetail[] } = {}) {
  const body: Record<string, unknown> = { code, message: extras.message ?? CORE_ERRORS[code].message };
  if (extras.details) body.details = extras.details;
  return json(CORE_ERRORS[code].status, body);
}

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
  // A statement cancelled by its deadline (statement_timeout): the backend is too slow to count on.
  "57014",
  "57P01",
  "57P03",
  "53300",
]);

/**
 * Postgres codes of a write that lost a race with another: a foreign key to a row deleted meanwhile (the account,
 * deleted while one of its requests ran), a deadlock, a serialization failure. The request was fine; the world moved.
 */
const RACE_LOST_CODES = new Set(["23503", "40P01", "40001"]);

export function lostRace(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { code?: unknown; cause?: unknown };
    if (typeof e.code === "string" && RACE_LOST_CODES.has(e.code)) return true;
    current = e.cause;
  }
  return false;
}

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
        return answer("VALIDATION_ERROR", { details: detailsFromValidation(error) });
      case "PARSE":
        return answer("VALIDATION_ERROR", { message: "Malformed request body", details: [{ path: "", message: "Body could not be parsed" }] });
      case "NOT_FOUND":
        return answer("NOT_FOUND");
      case "INVALID_COOKIE_SIGNATURE":
        return answer("VALIDATION_ERROR");
    }
    if (isConnectionError(error)) return answer("UNAVAILABLE");
    if (lostRace(error)) return answer("CONFLICT", { message: "A concurrent change (such as the account's deletion) got in the way; nothing was changed" });
    const status = (error as { status?: unknown }).status;
    if (typeof status === "number" && status >= 400 && status < 500) {
      const fallback = status === 413 ? "PAYLOAD_TOO_LARGE" : status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : "BAD_REQUEST";
      return json(status, { code: fallback, message: "Bad request" });
    }
    logUnexpected({ error, path: new URL(request.url).pathname });
    return answer("INTERNAL_ERROR");
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
