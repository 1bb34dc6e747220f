import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function passwordPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.password", seed: ctx.id });
}
