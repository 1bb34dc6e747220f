import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function mfaPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.mfa", seed: ctx.id });
}
