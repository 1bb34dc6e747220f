import type { Config } from "./config";

export type RequestMeta = { ip: string | null; userAgent: string | null };

type ServerLike = { requestIP(request: Request): { address: string } | null } | null | undefined;

/**
 * The client IP is the socket's, or the first X-Forwarded-For hop only when TRUST_PROXY is on. Both fields are read on
 * first use: most requests (a session check) never need them, and asking the socket for its peer is not free.
 */
export function requestMeta(config: Config, request: Request, server: ServerLike): RequestMeta {
  let ip: string | null | undefined;
  let userAgent: string | null | undefined;
  return {
    get ip() {
      if (ip === undefined) ip = clientIp(config, request, server);
      return ip;
    },
    get userAgent() {
      if (userAgent === undefined) userAgent = request.headers.get("user-agent")?.slice(0, 512) ?? null;
      return userAgent;
    },
  };
}

function clientIp(config: Config, request: Request, server: ServerLike): string | null {
  if (config.TRUST_PROXY) {
    const forwarded = request.headers.get("x-forwarded-for");
    const first = forwarded?.split(",")[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return server?.requestIP(request)?.address ?? null;
}
