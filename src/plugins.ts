import admin from "../plugins/admin";
import anonymous from "../plugins/anonymous";
import invitations from "../plugins/invitations";
import magicCode from "../plugins/magic-code";
import mfa from "../plugins/mfa";
import oauth from "../plugins/oauth";
import password from "../plugins/password";
import teams from "../plugins/teams";
import type { AuthContext } from "./context";
import { registerTemplates } from "./mail/render";

/**
 * The composition root: the plugins this server ships, in the order they are installed. It is the one module in
 * src/ that imports from plugins/; everything else reaches a plugin through its definition (src/plugin.ts).
 */
export const PLUGINS = [password, magicCode, anonymous, oauth, mfa, teams, invitations, admin] as const;

for (const plugin of PLUGINS) if ("emails" in plugin && plugin.emails) registerTemplates(plugin.emails);

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
