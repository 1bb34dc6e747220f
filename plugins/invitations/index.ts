import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";

export function invitationsPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.invitations", seed: ctx.id });
}
