/**
 * The paths this server answers. Elysia runs `onRequest` hooks before routing, for every request of the app that
 * mounts us, so each request-wide hook (body rules, security headers, request ids, CORS) asks this first: a host app's
 * own routes (an upload, a webhook, a big JSON body) are left alone. Route hooks are scoped by Elysia itself.
 */
export function ownedPaths(basePath: string): (url: string) => boolean {
  const roots = ["/health", "/docs", "/metrics", "/.well-known/jwks.json", basePath];
  return (url) => {
    const path = pathOf(url);
    return roots.some((root) => path === root || path.startsWith(`${root}/`));
  };
}

/** The path of a request URL, without parsing it whole: this runs on every request. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end === -1 ? url.slice(start) : url.slice(start, start + end);
}
