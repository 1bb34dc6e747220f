import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "./context";

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const partSchema = z.enum(["ok", "down"]);
const readySchema = z.object({ status: z.enum(["ok", "unavailable", "draining"]), db: partSchema, kv: partSchema });

/**
 * Whether the process is shutting down (it finishes what it has, and readiness says so, so no new work is routed
 * here), and how many requests have not finished yet, their log line included.
 */
export type Lifecycle = { draining: boolean; inFlight: number };

/**
 * Counts requests until their log line is written: registered after the request log, its hook runs after that one.
 * Registered too after the request hooks that may answer at once (CORS preflights, the body check's 413 and 415): such
 * an answer skips every later hook, its after-response one included, so counting it here would never end.
 */
export function trackRequests(seed: string, lifecycle: Lifecycle) {
  return new Elysia({ name: "auth.lifecycle", seed })
    .onRequest(() => {
      lifecycle.inFlight += 1;
    })
    .onAfterResponse({ as: "global" }, () => {
      lifecycle.inFlight -= 1;
    });
}

/** Resolves once every request has finished and been logged, or after `timeoutMs`. */
export async function drained(lifecycle: Lifecycle, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (lifecycle.inFlight > 0 && Date.now() < deadline) await Bun.sleep(10);
}

/**
 * `/health/live` answers while the process runs (a restart cannot fix a backend that is down, so liveness never asks
 * one); `/health/ready` and `/health` probe Postgres and Redis, each bounded, and answer 503 naming the part that is down.
 */
export function healthRoutes(ctx: AuthContext, lifecycle: Lifecycle) {
  const timeoutMs = Math.min(ctx.config.BACKEND_TIMEOUT_MS, 2000);
  const probe = (p: Promise<void>) =>
    withTimeout(p, timeoutMs).then(
      () => "ok" as const,
      () => "down" as const,
    );
  const ready = async ({ set }: { set: { status?: number | string } }) => {
    const [db, kv] = await Promise.all([probe(ctx.database.ping()), probe(ctx.kv.ping())]);
    const ok = db === "ok" && kv === "ok" && !lifecycle.draining;
    if (!ok) set.status = 503;
    const status = lifecycle.draining ? ("draining" as const) : ok ? ("ok" as const) : ("unavailable" as const);
    return { status, db, kv };
  };
  const readyDetail = (summary: string) => ({
    response: { 200: readySchema, 503: readySchema },
    detail: {
      summary,
      description:
        "`200 {status: ok, db: ok, kv: ok}`, or `503` with `status: unavailable` and the part that is down (`db` or `kv`), or `status: draining` while the process shuts down. Each probe is bounded by BACKEND_TIMEOUT_MS (2 s at most).",
      tags: ["core"],
    },
  });
  return new Elysia({ name: "auth.health", seed: ctx.id })
    .get("/health/live", () => ({ status: "ok" as const }), {
      response: { 200: z.object({ status: z.literal("ok") }) },
      detail: { summary: "Liveness: 200 while the process runs; asks no backend", tags: ["core"] },
    })
    .get("/health/ready", ready, readyDetail("Readiness: the database and the KV store answer"))
    .get("/health", ready, readyDetail("Readiness (same as /health/ready)"));
}
