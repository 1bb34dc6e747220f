import { Elysia } from "elysia";
import type { AuditEvent } from "./audit";
import type { AuthContext } from "./context";
import type { Logger } from "./logger";

/** A client's request id is kept only when it cannot smuggle anything into a log line or a header. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Label values that come from events (sign-in methods) are bounded, so a plugin cannot blow up the series. */
const SAFE_LABEL = /^[a-z0-9_-]{1,32}$/;

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`)
    .join(",");
}

class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + 1);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.values) lines.push(`${this.name}{${key}} ${value}`);
    return lines.join("\n");
  }
}

class Histogram {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { buckets: DURATION_BUCKETS_S.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < DURATION_BUCKETS_S.length; i++) if (value <= (DURATION_BUCKETS_S[i] as number)) s.buckets[i] = (s.buckets[i] ?? 0) + 1;
    s.sum += value;
    s.count += 1;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key ? "," : "";
      DURATION_BUCKETS_S.forEach((le, i) => {
        lines.push(`${this.name}_bucket{${key}${sep}le="${le}"} ${s.buckets[i]}`);
      });
      lines.push(`${this.name}_bucket{${key}${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum{${key}} ${s.sum}`);
      lines.push(`${this.name}_count{${key}} ${s.count}`);
    }
    return lines.join("\n");
  }
}

/** This process's counters, written by hand in the Prometheus text format (version 0.0.4). */
class Metrics {
  readonly requests = new Counter("auth_http_requests_total", "HTTP requests by method, route pattern and status.");
  readonly durations = new Histogram("auth_http_request_duration_seconds", "HTTP request duration by method and route pattern.");
  readonly signIns = new Counter("auth_sign_ins_total", "Sign-in attempts by method and outcome.");
  readonly rateLimited = new Counter("auth_rate_limited_total", "Requests refused with 429 by route pattern.");

  render(): string {
    return `${[this.requests, this.durations, this.signIns, this.rateLimited].map((m) => m.render()).join("\n")}\n`;
  }
}

/** Counts sign-ins where every sign-in path already reports them: the audit log. */
function countSignIns(event: AuditEvent, metrics: Metrics): void {
  if (event.type !== "sign_in" && event.type !== "sign_in_failed") return;
  const method = typeof event.data?.method === "string" && SAFE_LABEL.test(event.data.method) ? event.data.method : "other";
  metrics.signIns.inc({ method, outcome: event.type === "sign_in" ? "success" : "failure" });
}

function statusOf(status: unknown): number {
  return typeof status === "number" ? status : 200;
}

/** The user a request acted for: the resolved Bearer token, else the user a sign-in answered with. */
function userIdOf(context: object, response: unknown): string | undefined {
  const auth = (context as { auth?: { userId?: unknown } | null }).auth;
  if (auth && typeof auth.userId === "string") return auth.userId;
  const user = (response as { user?: { id?: unknown } } | null)?.user;
  return response && typeof response === "object" && !(response instanceof Response) && typeof user?.id === "string" ? user.id : undefined;
}

/**
 * Request ids, one JSON log line per request (no body, header or query: nothing secret can leak) and, with
 * METRICS=true, Prometheus metrics at GET /metrics.
 */
export function observability(ctx: AuthContext, logger: Logger, owns: (url: string) => boolean) {
  const metrics = new Metrics();
  ctx.audit.onRecord((event) => countSignIns(event, metrics));
  const started = new WeakMap<Request, { at: number; requestId: string; status?: number }>();
  const requestIdOf = (request: Request) => {
    const sent = request.headers.get("x-request-id");
    return sent && SANE_REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
  };

  // Nothing reads a request's outcome when neither request logs nor metrics are on: skip the per-request hooks.
  const observes = ctx.config.LOG_LEVEL === "debug" || ctx.config.LOG_LEVEL === "info" || ctx.config.METRICS;
  const plugin = new Elysia({ name: "auth.observability", seed: ctx.id })
    .onRequest(({ request, set }) => {
      // Timed before routing, when nobody knows yet whose route it is; only our own paths get our header here.
      const requestId = owns(request.url) ? requestIdOf(request) : undefined;
      if (requestId) set.headers["x-request-id"] = requestId;
      if (observes) started.set(request, { at: performance.now(), requestId: requestId ?? "" });
    })
    // An unknown path reaches our (scoped) error hooks only when this server is the root app: then it is ours too.
    .onError({ as: "scoped" }, ({ code, request, set }) => {
      if (code !== "NOT_FOUND" || set.headers["x-request-id"]) return;
      const requestId = requestIdOf(request);
      set.headers["x-request-id"] = requestId;
      const start = started.get(request);
      if (start) start.requestId = requestId;
    });
  if (!observes) return plugin;

  plugin
    // Elysia hands the Response that onError made (every error's status) to later hooks only through mapResponse.
    .mapResponse({ as: "scoped" }, ({ request, responseValue, set }) => {
      const start = started.get(request);
      if (start) start.status = responseValue instanceof Response ? responseValue.status : statusOf(set.status);
    })
    .onAfterResponse({ as: "scoped" }, (context) => {
      const { request, set, route, responseValue } = context;
      const start = started.get(request);
      if (!start) return;
      const durationS = (performance.now() - start.at) / 1000;
      // Errors raised before routing (an unknown path) skip mapResponse; their status is on the error itself.
      const raised = (context as { error?: { status?: unknown } }).error;
      const status = start.status ?? (typeof raised?.status === "number" ? raised.status : statusOf(set.status));
      // The pattern, never the raw path: ids and tokens in paths stay out of logs and out of label values.
      const routePattern = route || "unmatched";
      const labels = { method: request.method, route: routePattern, status: String(status) };
      if (ctx.config.METRICS) {
        metrics.requests.inc(labels);
        metrics.durations.observe({ method: request.method, route: routePattern }, durationS);
        if (status === 429) metrics.rateLimited.inc({ route: routePattern });
      }
      logger.info("request", {
        method: request.method,
        route: routePattern,
        status,
        durationMs: Math.round(durationS * 100_000) / 100,
        requestId: start.requestId,
        userId: userIdOf(context, responseValue),
      });
    });

  if (!ctx.config.METRICS) return plugin;
  return plugin.get(
    "/metrics",
    ({ set }) => {
      set.headers["content-type"] = "text/plain; version=0.0.4; charset=utf-8";
      return metrics.render();
    },
    { detail: { hide: true } },
  );
}
