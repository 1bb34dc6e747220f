import type { Config } from "./config";

export type RequestMeta = { ip: string | null; userAgent: string | null };

type ServerLike = { requestIP(request: Request): { address: string } | null } | null | undefined;

/** The client IP is the socket's, or the first X-Forwarded-For hop only when TRUST_PROXY is on. */
export function requestMeta(config: Config, request: Request, server: ServerLike): RequestMeta {
  let ip: string | null = null;
  if (config.TRUST_PROXY) {
    const forwarded = request.headers.get("x-forwarded-for");
    const first = forwarded?.split(",")[0]?.trim();
    if (first) ip = first.slice(0, 64);
  }
  if (!ip) ip = server?.requestIP(request)?.address ?? null;
  const userAgent = request.headers.get("user-agent")?.slice(0, 512) ?? null;
  return { ip, userAgent };
}
