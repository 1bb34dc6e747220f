import admin from "../plugins/admin";
import { type AdminPeers, grantAdmin as grantAdminTo } from "../plugins/admin/service";
import anonymous from "../plugins/anonymous";
import { hostedUiLinks, hostedUiPlugin } from "../pages";
import invitations from "../plugins/invitations";
import magicCode from "../plugins/magic-code";
import mfa from "../plugins/mfa";
import oauth from "../plugins/oauth";
import password from "../plugins/password";
import teams from "../plugins/teams";
import webhooks from "../plugins/webhooks";
import type { AuthContext } from "./context";
import { CORE_ERRORS } from "./errors";
import { registerTemplates } from "./mail/render";
import { errorRegistryOf } from "./plugin";

/**
 * The composition root: the plugins this server ships, in the order they are installed. It is the one module in
 * src/ that imports from plugins/; everything else reaches a plugin through its definition (src/plugin.ts).
 */
export const PLUGINS = [password, magicCode, anonymous, oauth, mfa, teams, invitations, admin, webhooks] as const;

/**
 * The hosted pages: on with HOSTED_UI (not an AUTH_PLUGINS entry), a client of the plugins' services. `routes` go under
 * AUTH_BASE_PATH; `links` answer `/` and the emailed link paths when APP_URL is this server.
 */
export const HOSTED_PAGES = { routes: hostedUiPlugin, links: hostedUiLinks };

for (const plugin of PLUGINS) if ("emails" in plugin && plugin.emails) registerTemplates(plugin.emails);

/** Every code a client can get, once each, with its one status (library-mode hooks may throw their own). */
export const ERROR_REGISTRY = errorRegistryOf(CORE_ERRORS, PLUGINS);

/** Each plugin's dependencies, by id. */
export const DEPENDENCIES: ReadonlyMap<string, readonly string[]> = new Map(PLUGINS.map((p) => [p.id, "dependsOn" in p ? (p.dependsOn ?? []) : []]));

/** Every plugin's routes chained statically, so the app's type (Eden treaty) holds them all. Never served. */
export function allPluginRoutes(ctx: AuthContext) {
  const deps = peersOf(ctx, new Set(PLUGINS.map((p) => p.id))) as never;
  return password
    .routes(ctx, deps)
    .use(magicCode.routes(ctx, deps))
    .use(anonymous.routes(ctx, deps))
    .use(oauth.routes(ctx, deps))
    .use(mfa.routes(ctx, deps))
    .use(teams.routes(ctx, deps))
    .use(invitations.routes(ctx, deps))
    .use(admin.routes(ctx, deps))
    .use(webhooks.routes(ctx, deps));
}

/** The public APIs of the plugins in `enabled`, by plugin id, as installPlugins hands them to dependents. */
function peersOf(ctx: AuthContext, enabled: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(PLUGINS.filter((p) => enabled.has(p.id) && "api" in p && p.api).map((p) => [p.id, "api" in p ? p.api?.(ctx) : undefined]));
}

/** For the CLI (`users create-admin EMAIL`): the admin plugin's grant, reached through the composition root. */
export function grantAdmin(ctx: AuthContext, email: string) {
  return grantAdminTo(ctx, peersOf(ctx, new Set(ctx.config.AUTH_PLUGINS)) as AdminPeers, email);
}
