import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function oauthPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.oauth", seed: ctx.id });
}
