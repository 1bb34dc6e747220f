/**
 * The server mounted in a host Elysia app, beside the host's own routes. `bun examples/mounted-app.ts` runs it;
 * `examples/client.ts` is a typed client for it.
 */
import { createAuthServer } from "bun-auth-server";
import { Elysia, t } from "elysia";

const auth = await createAuthServer({
  DATABASE_URL: process.env.DATABASE_URL,
  REDIS_URL: process.env.REDIS_URL,
  APP_URL: "http://localhost:3000",
});

export const app = new Elysia()
  .use(auth) // /auth/*, /health, /docs, /.well-known/jwks.json
  .get("/hello", () => ({ greeting: "hi" }))
  .post("/notes", ({ body }) => ({ saved: body.text }), { body: t.Object({ text: t.String() }) });

export type App = typeof app;

if (import.meta.main) app.listen(3000);
