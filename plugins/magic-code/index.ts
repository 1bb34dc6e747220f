import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function magicCodePlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.magic-code", seed: ctx.id });
}
