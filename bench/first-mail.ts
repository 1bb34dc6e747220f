/**
 * What the first mail costs a process: RSS (/proc/self/status VmRSS) before the renderer is loaded, after the first
 * render of a template (React, react-dom/server and the email components load then), and after a full collection,
 * with the first render's time. Prints one JSON line. `bun bench/first-mail.ts`
 */
import { readFileSync } from "node:fs";

const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024;

const before = rssMb();
const { renderEmail } = await import("../src/mail/render");
const started = performance.now();
await renderEmail("new-sign-in", { ip: "203.0.113.7", userAgent: "bench", at: new Date().toISOString() });
const firstRenderMs = performance.now() - started;
const afterRender = rssMb();
Bun.gc(true);
console.log(JSON.stringify({ beforeMb: before, afterFirstRenderMb: afterRender, afterGcMb: rssMb(), firstRenderMs }));
