import admin from "../plugins/admin";
import anonymous from "../plugins/anonymous";
import invitations from "../plugins/invitations";
import magicCode from "../plugins/magic-code";
import mfa from "../plugins/mfa";
import oauth from "../plugins/oauth";
import password from "../plugins/password";
import teams from "../plugins/teams";
import type { AuthContext } from "./context";
import { CORE_ERRORS } from "./errors";
import { registerTemplates } from "./mail/render";
import { errorRegistryOf } from "./plugin";

/**
 * The composition root: the plugins this server ships, in the order they are installed. It is the one module in
 * src/ that imports from plugins/; everything else reaches a plugin through its definition (src/plugin.ts).
 */
export const PLUGINS = [password, magicCode, anonymous, oauth, mfa, teams, invitations, admin] as const;

for (const plugin of PLUGINS) if ("emails" in plugin && plugin.emails) registerTemplates(plugin.emails);

/** Every code a client can get, once each, with its one status (library-mode hooks may throw their own). */
export const ERROR_REGISTRY = errorRegistryOf(CORE_ERRORS, PLUGINS);

/** Each plugin's dependencies, by id. */
export const DEPENDENCIES: ReadonlyMap<string, readonly string[]> = new Map(PLUGINS.map((p) => [p.id, "dependsOn" in p ? (p.dependsOn ?? []) : []]));

/** Every plugin's routes chained statically, so the app's type (Eden treaty) holds them all. Never served. */
export function allPluginRoutes(ctx: AuthContext) {
  const deps = { teams: teams.api?.(ctx) } as never;
  return password
    .routes(ctx, deps)
    .use(magicCode.routes(ctx, deps))
    .use(anonymous.routes(ctx, deps))
    .use(oauth.routes(ctx, deps))
    .use(mfa.routes(ctx, deps))
    .use(teams.routes(ctx, deps))
    .use(invitations.routes(ctx, deps))
    .use(admin.routes(ctx, deps));
}
