/** One Set-Cookie header, split into its name, value and attributes (names lower-cased, flags as ""). */
export type SetCookie = { name: string; value: string; attributes: Record<string, string> };

export function parseSetCookie(header: string): SetCookie {
  const [pair = "", ...rest] = header.split(";");
  const eq = pair.indexOf("=");
  const attributes: Record<string, string> = {};
  for (const part of rest) {
    const [key = "", ...value] = part.trim().split("=");
    attributes[key.toLowerCase()] = value.join("=");
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes };
}

/** The Set-Cookie headers of an answer, by cookie name. */
export function setCookies(headers: Headers): Map<string, SetCookie> {
  return new Map(headers.getSetCookie().map((h) => [parseSetCookie(h).name, parseSetCookie(h)]));
}

/**
 * What a browser would keep between requests: cookies by name, updated from each answer (Max-Age=0 deletes).
 * `header()` is the Cookie header to send.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  store(headers: Headers): void {
    for (const c of setCookies(headers).values()) {
      if (c.attributes["max-age"] === "0") this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}
