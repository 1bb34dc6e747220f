import { isIPv4, isIPv6 } from "node:net";

/** Parses a valid IPv6 address (an IPv4 tail allowed) into its eight 16-bit groups. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (tail) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split(".").map(Number);
    text = `${text.slice(0, -tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", rest] = text.split("::");
  const parse = (part: string) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  return [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
}

/**
 * The client a per-IP limit counts: an IPv4 address as itself, an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as
 * that IPv4 address, and any other IPv6 address by its /64 (one subscriber usually holds a whole /64, so each of its
 * addresses is not a new client). Brackets, a port and a zone id are dropped; anything else unparsable counts as
 * itself. Every per-IP limit keys on this (RateLimiter applies it to each limit named `*_IP`).
 */
export function ipKey(raw: string): string {
  let address = raw.trim().toLowerCase();
  address = /^\[([^\]]+)\](?::\d+)?$/.exec(address)?.[1] ?? address;
  address = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address)?.[1] ?? address;
  const zone = address.indexOf("%");
  if (zone >= 0) address = address.slice(0, zone);
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return raw.slice(0, 64);
  const groups = ipv6Groups(address);
  const [g6 = 0, g7 = 0] = groups.slice(6);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `${g6 >> 8}.${g6 & 255}.${g7 >> 8}.${g7 & 255}`;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}
