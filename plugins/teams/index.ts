import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function teamsPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.teams", seed: ctx.id });
}
