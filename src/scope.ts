/**
 * The paths this server answers. Elysia runs `onRequest` hooks before routing, for every request of the app that
 * mounts us, so each request-wide hook (body rules, security headers, request ids, CORS) asks this first: a host app's
 * own routes (an upload, a webhook, a big JSON body) are left alone. Route hooks are scoped by Elysia itself.
 */
export function ownedPaths(basePath: string): (url: string) => boolean {
  const roots = ["/health", "/docs", "/metrics", "/.well-known/jwks.json", basePath];
  const prefixes = roots.map((root) => `${root}/`);
  // Each hook of a request asks with the same URL in turn: the last answer is kept (the answer is the URL's alone).
  let lastUrl = "";
  let lastOwned = false;
  return (url) => {
    if (url === lastUrl) return lastOwned;
    const path = pathOf(url);
    let owned = false;
    for (let i = 0; i < roots.length && !owned; i++) owned = path === roots[i] || path.startsWith(prefixes[i] as string);
    lastUrl = url;
    lastOwned = owned;
    return owned;
  };
}

/** The path of a request URL, without parsing it whole: this runs on every request. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  let end = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  if (hash !== -1 && (end === -1 || hash < end)) end = hash;
  return end === -1 ? url.slice(start) : url.slice(start, end);
}
