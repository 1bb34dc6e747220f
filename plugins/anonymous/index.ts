import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function anonymousPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.anonymous", seed: ctx.id });
}
