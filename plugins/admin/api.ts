import { Elysia } from "elysia";
import type { AuthContext } from "../../src/context";
import type { UserRow } from "../../src/db/schema";
import { errors } from "../../src/errors";
import { authenticateRequest } from "../../src/sessions/guard";
import { assertRecentProof } from "../../src/sessions/step-up";
import { requireAdmin } from "./service";

/**
 * The `admin` macro: `admin: true` for a route that reads, `admin: "step-up"` for one that changes something (it also
 * needs a recent proof of a factor, 403 REAUTH_REQUIRED, asked after the admin check so that a member still learns
 * FORBIDDEN). Checked before the body, query and params are validated: someone who may not call the route learns
 * nothing about its input. The role is read from the database, and an impersonation token is refused (requireAdmin).
 * The handler gets the caller's row as `admin`.
 */
export function adminGuard(ctx: AuthContext) {
  // The admin row found for a request before its input is validated, handed to its handler by `resolve`.
  const admins = new WeakMap<Request, UserRow>();
  return new Elysia({ name: "plugin.admin.guard", seed: ctx.id }).macro({
    admin: (level: true | "step-up") => ({
      async transform({ request }) {
        const auth = await authenticateRequest(ctx, request);
        const admin = await requireAdmin(ctx, auth);
        if (level === "step-up") await assertRecentProof(ctx, auth, true);
        admins.set(request, admin);
      },
      resolve({ request }) {
        const admin = admins.get(request);
        if (!admin) throw errors.unauthorized();
        return { admin };
      },
    }),
  });
}

/** What the admin plugin offers the plugins that use it: its guard, for their admin-only routes. */
export type AdminApi = { guard: ReturnType<typeof adminGuard> };

export function adminApi(ctx: AuthContext): AdminApi {
  return { guard: adminGuard(ctx) };
}

declare module "../../src/plugin" {
  interface PluginApis {
    admin: AdminApi;
  }
}
