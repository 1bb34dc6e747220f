/**
 * One frozen array per distinct list of names (roles, amr): the caches of sessions hold hundreds of thousands of
 * entries whose lists are nearly all alike, and a copy each would be most of their memory (measured: 100,000 tokens
 * and session copies take 168 MB with their own arrays and strings, 76 MB sharing them). Bounded: past MAX distinct
 * lists, a list is frozen and kept as it is.
 */
const MAX = 1024;
const lists = new Map<string, readonly string[]>();

export function internList(list: readonly string[]): readonly string[] {
  const key = list.join("\u0000");
  const known = lists.get(key);
  if (known) return known;
  const frozen = Object.freeze([...list]);
  if (lists.size < MAX) lists.set(key, frozen);
  return frozen;
}
