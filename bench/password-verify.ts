/**
 * The reference for POST /auth/login: Bun.password.verify alone, argon2id with the server's parameters, 16 in flight,
 * for DURATION_S seconds. Prints one JSON line {requests, rps, p50Ms, p99Ms}. MODE=hash: Bun.password.hash instead (the
 * reference for POST /auth/register).
 */
export {};

const memoryCost = Number(process.env.PASSWORD_HASH_MEMORY_KIB ?? 19456);
const timeCost = Number(process.env.PASSWORD_HASH_TIME_COST ?? 2);
const inFlight = Number(process.env.IN_FLIGHT ?? 16);
const hashing = process.env.MODE === "hash";
const durationMs = Number(process.env.DURATION_S ?? 8) * 1000;

const password = "correct-horse-battery-staple";
const hash = await Bun.password.hash(password, { algorithm: "argon2id", memoryCost, timeCost });
// Warm the worker pool the way the server's first requests do.
await Promise.all(Array.from({ length: inFlight }, () => Bun.password.verify(password, hash)));

// Counted as wrk counts: the verifications that complete inside the window, over the window. (Counting the ones
// still running at its end, and stretching the window until they finish, would flatter the reference by a few %.)
const latencies: number[] = [];
const started = performance.now();
const end = started + durationMs;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      if (hashing) await Bun.password.hash(password, { algorithm: "argon2id", memoryCost, timeCost });
      else if (!(await Bun.password.verify(password, hash))) throw new Error("verify failed");
      if (performance.now() <= end) latencies.push(performance.now() - t);
    }
  }),
);
const elapsedS = durationMs / 1000;
latencies.sort((x, y) => x - y);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
console.log(JSON.stringify({ requests: latencies.length, rps: latencies.length / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99) }));
