import { dirname, join } from "node:path";
import type { ElysiaOpenAPIConfig } from "@elysiajs/openapi";
import type { toOpenAPISchema } from "@elysiajs/openapi/openapi";
import { Elysia } from "elysia";
import { z } from "zod";
import { errors } from "./errors";
import { BROWSER_SESSIONS_DOC } from "./sessions/cookies";

/**
 * The reference UI's script, from the pinned @scalar/api-reference package (never a CDN, so /docs renders on a closed
 * network). The package exports no path to it, so it is found beside its entry; the binary embeds it (`--asset`).
 */
function scalarScriptPath(): string | undefined {
  if (Bun.isStandaloneExecutable) return `${import.meta.dir}/standalone.js`;
  try {
    return join(dirname(Bun.resolveSync("@scalar/api-reference", import.meta.dir)), "browser", "standalone.js");
  } catch {
    return undefined;
  }
}

type ScalarOptions = NonNullable<ElysiaOpenAPIConfig["scalar"]>;

const SCALAR_SCRIPT_ROUTE = "/docs/assets/api-reference.js";
/** The version the spec declares: @elysiajs/openapi's default. */
const OPENAPI_VERSION = "3.1.2";

type Operation = {
  security?: unknown[];
  parameters?: unknown[];
  requestBody?: { content?: Record<string, unknown> };
  responses?: Record<string, unknown>;
};
export type Spec = { paths: Record<string, Record<string, Operation>>; components: Record<string, Record<string, unknown>> };

/** A fresh schema per answer: the error registry lists each status's codes in its own copy (src/openapi-errors.ts). */
const errorBody = () =>
  z.toJSONSchema(
    z.object({
      code: z.string().describe("A stable machine code"),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  );
const errorAnswer = (description: string) => ({ description, content: { "application/json": { schema: errorBody() } } });

/**
 * What every route of the server may answer besides its own outcomes: the body rules, the Bearer check, and 503 when
 * Postgres or Redis is unreachable. Added to each operation that lacks them, so no route's spec misses an answer.
 */
function completeOperation(path: string, method: string, operation: Operation, basePath: string): void {
  operation.responses ??= {};
  const responses = operation.responses;
  const add = (status: string, description: string) => {
    if (!(status in responses)) responses[status] = errorAnswer(description);
  };
  const content = operation.requestBody?.content;
  // Multipart is refused with 415: only JSON and form bodies are parsed.
  if (content) delete content["multipart/form-data"];
  if (content || operation.parameters?.length) add("400", "`VALIDATION_ERROR`: the input does not match the schema (`details` names the fields)");
  if (content) {
    add("413", "`PAYLOAD_TOO_LARGE`: the body is larger than 64 KiB");
    add("415", "`UNSUPPORTED_MEDIA_TYPE`: the body is neither JSON nor form-encoded");
  }
  if (operation.security?.length) add("401", "`UNAUTHORIZED`, `INVALID_TOKEN` or `SESSION_REVOKED`: no valid access token");
  if (operation.security?.length && method !== "get") {
    add("409", "`CONFLICT`: a concurrent change got in the way (the account was deleted while this ran); nothing was changed");
  }
  if (path === basePath || path.startsWith(`${basePath}/`)) add("503", "`UNAVAILABLE`: Postgres or Redis is unreachable");
}

/** Our own routes only: mounted, the spec lists the host's routes too, and our body rules are not theirs. */
function completeSpec(spec: Spec, basePath: string, owns: (url: string) => boolean): void {
  for (const [path, operations] of Object.entries(spec.paths)) {
    if (!owns(`http://localhost${path}`)) continue;
    for (const [method, operation] of Object.entries(operations)) completeOperation(path, method, operation, basePath);
  }
}

/** The spec's own parts; info's keys in the order the plugin wrote them. */
const documentation = {
  info: {
    title: "Auth server",
    description:
      "Sign-up, sign-in, sessions, MFA, social login, teams and invitations. Errors are `{code, message, details?}`; bodies are JSON or form-encoded, 64 KiB at most; U+0000 in any path segment, query value or body field is `400 VALIDATION_ERROR`. Routes marked with the bearer scheme take `Authorization: Bearer <accessToken>` or the `auth_at` cookie.\n\n" +
      BROWSER_SESSIONS_DOC,
    version: "0.1.0",
  },
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
      cookie: {
        type: "apiKey",
        in: "cookie",
        name: "auth_at",
        description:
          "The browser session's access cookie (`__Host-auth_at` when PUBLIC_URL is not http://localhost, 127.0.0.1 or [::1]); an Authorization header, when sent, is used instead.",
      },
    },
  },
};

/** The spec as @elysiajs/openapi's plugin assembled it, key for key: the documentation around the routes' paths. */
function assembleSpec({ paths, components }: ReturnType<typeof toOpenAPISchema>): Spec {
  return { ...documentation, openapi: OPENAPI_VERSION, paths, components: { ...documentation.components, schemas: components.schemas } } as Spec;
}

/**
 * `/docs` (the reference UI, served from our own assets) and `/docs/json` (the OpenAPI spec, completed, then handed
 * to `listCodes`, which names each error status's codes).
 *
 * Not the package's `openapi()` plugin: its entry loads about 2.5 MB (type generators, validator adapters) at start,
 * which a server whose docs nobody reads never needs. Its two small parts that make the spec and the page are loaded
 * on the first request for them instead, and both answers are the plugin's, byte for byte.
 */
export function docs(seed: string, basePath: string, owns: (url: string) => boolean, listCodes: (spec: Spec) => void) {
  const scriptPath = scalarScriptPath();
  // Each made once, on its first request, as the plugin made the spec: every route is registered by then.
  let page: string | undefined;
  let spec: Spec | undefined;
  const app = new Elysia({ name: "auth.docs", seed })
    .get(
      SCALAR_SCRIPT_ROUTE,
      ({ set }) => {
        if (!scriptPath) throw errors.notFound();
        set.headers["cache-control"] = "public, max-age=3600";
        set.headers["content-type"] = "text/javascript; charset=utf-8";
        return Bun.file(scriptPath);
      },
      { detail: { hide: true } },
    )
    .get(
      "/docs",
      async () => {
        const { ScalarRender } = await import("@elysiajs/openapi/scalar");
        // The plugin's configuration, field for field: the spec by a path relative to the page, our copy of the
        // script, and no default fonts (they come from Scalar's servers).
        const scalar = { url: "docs/json", version: "latest", cdn: SCALAR_SCRIPT_ROUTE, withDefaultFonts: false, _integration: "elysiajs" };
        page ??= ScalarRender(documentation.info, scalar as ScalarOptions);
        return new Response(page, { headers: { "content-type": "text/html; charset=utf8" } });
      },
      { detail: { hide: true } },
    )
    .get(
      "/docs/json",
      async (): Promise<Spec> => {
        const { toOpenAPISchema } = await import("@elysiajs/openapi/openapi");
        if (spec) return spec;
        // Any instance of the tree reads every route of the app, and of a host app that mounts this server.
        const built = assembleSpec(
          toOpenAPISchema(
            app,
            // /.well-known/jwks.json has a dot in its path, which would otherwise be taken for a static file.
            { staticFile: false },
            undefined,
            // Bodies as clients send them (before transforms such as form booleans); what JSON Schema cannot say (a
            // 204's void) becomes an open schema instead of a console warning and a route missing from the spec.
            { zod: (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) },
            OPENAPI_VERSION,
          ),
        );
        completeSpec(built, basePath, owns);
        listCodes(built);
        spec = built;
        return spec;
      },
      { detail: { hide: true } },
    );
  return app;
}
