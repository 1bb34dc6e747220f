import { Elysia } from "elysia";
import type { RegisteredError } from "./plugin";

type Operation = { tags?: string[]; responses?: Record<string, { content?: Record<string, { schema?: ErrorBody }> }> };
type ErrorBody = { properties?: { code?: { type?: string; enum?: string[] } } };

/**
 * The spec at /docs/json lists, under each error status of each route, the codes that route can answer there: the
 * core's and its plugin's (and the plugins it depends on) registered with that status. Routes carry their plugin's id
 * as their tag, so this is read off the registry rather than repeated by hand at every route.
 */
export function listErrorCodes(spec: { paths?: Record<string, Record<string, Operation>> }, registry: ReadonlyMap<string, RegisteredError>, dependsOn: ReadonlyMap<string, readonly string[]>) {
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const owners = new Set(["core", ...(operation.tags ?? []).flatMap((tag) => [tag, ...(dependsOn.get(tag) ?? [])])]);
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const code = response.content?.["application/json"]?.schema?.properties?.code;
        if (Number(status) < 400 || code?.type !== "string") continue;
        const codes = [...registry].filter(([, e]) => e.status === Number(status) && owners.has(e.owner)).map(([c]) => c);
        if (codes.length > 0) code.enum = codes.sort();
      }
    }
  }
  return spec;
}

/**
 * Completes the generated spec in place on its way out (the openapi plugin builds it once and caches it). Nothing is
 * returned, so the hook adds nothing to any route's answer type.
 */
export function errorCodesInSpec(seed: string, specPath: string, registry: ReadonlyMap<string, RegisteredError>, dependsOn: ReadonlyMap<string, readonly string[]>) {
  return new Elysia({ name: "auth.openapi-errors", seed }).onAfterHandle({ as: "global" }, ({ path, response }) => {
    if (path === specPath && response && typeof response === "object" && "paths" in response) {
      listErrorCodes(response as Parameters<typeof listErrorCodes>[0], registry, dependsOn);
    }
  });
}
