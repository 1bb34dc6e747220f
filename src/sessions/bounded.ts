/**
 * Sets `key` in a Map used as a bounded cache, forgetting the oldest entry (insertion order) past `max`. A key set
 * again moves to the end; one only read stays where it is, so a hit costs a lookup and nothing more.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}
