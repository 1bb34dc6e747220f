/** The reference for the hot path: a bare Elysia route answering a small JSON, on the same core and settings. */
import { Elysia } from "elysia";

const port = Number(process.env.PORT ?? 3102);
new Elysia().get("/hello", () => ({ ok: true, message: "hello" })).listen({ port, hostname: "127.0.0.1" });
console.log(`ready ${port}`);
