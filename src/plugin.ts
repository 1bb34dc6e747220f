import type { AnyElysia } from "elysia";
import type { z } from "zod";
import type { CoreSettings } from "./config";
import type { AuthContext, CredentialKind, Hooks } from "./context";
import type { ErrorCatalog } from "./errors";
import type { TemplateLoaders } from "./mail/render";
import type { Limit } from "./settings-fields";

/**
 * The one contract between the core and a plugin. A plugin declares everything it brings (settings, rate limits,
 * tables, error codes, emails, hooks, routes) and which other plugins it needs; the composition root
 * (src/plugins.ts) lists the plugins and is the only place in src/ that imports them. See docs/PLUGINS.md.
 */

/** A plugin's own settings, merged into the one check at start: a wrong value stops the server naming its variable. */
export type SettingsSpec<Shape extends z.ZodRawShape = z.ZodRawShape, Derived extends object = object> = {
  /** The plugin's variables, by name. */
  shape: Shape;
  /** Checks across variables (a client id without its secret); an issue's `path` is the variable it names. */
  check?(settings: z.output<z.ZodObject<Shape>>, issues: z.RefinementCtx): void;
  /** Values worked out from the plugin's settings and the core's (WebAuthn's origin from APP_URL), merged into the config. */
  derive?(settings: z.output<z.ZodObject<Shape>>, core: CoreSettings): Derived;
};

/** Identity, for inference: `defineSettings({ shape, check?, derive? })`. */
export function defineSettings<Shape extends z.ZodRawShape, Derived extends object = object>(
  spec: SettingsSpec<Shape, Derived>,
): SettingsSpec<Shape, Derived> {
  return spec;
}

/** What a settings spec puts into the config: its variables' parsed values and what it derives. */
export type SettingsOf<S> = S extends SettingsSpec<infer Shape, infer Derived> ? z.output<z.ZodObject<Shape>> & Derived : never;

/**
 * The public APIs plugins offer each other, by plugin id. A plugin that offers one adds it here from its own folder
 * (`declare module "../../src/plugin" { interface PluginApis { teams: TeamsApi } }`); a plugin that needs one names
 * the id in `dependsOn` and receives the API, never the other plugin's internals.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging from each plugin's folder
export interface PluginApis {}

type ApiOf<Id extends string> = Id extends keyof PluginApis ? PluginApis[Id] : unknown;
export type DependencyApis<Deps extends readonly string[]> = { [K in Deps[number]]: K extends keyof PluginApis ? PluginApis[K] : never };
/** The APIs of the plugins a plugin `uses`: each there when that plugin is on, undefined when it is off. */
export type OptionalApis<Uses extends readonly string[]> = { [K in Uses[number]]?: K extends keyof PluginApis ? PluginApis[K] : never };

/** The extension points a plugin fills; the core calls them without knowing the plugin. */
export type PluginHooks = {
  mfaChallenge?: Hooks["mfaChallenge"];
  credentials?: CredentialKind[];
  maintenance?: Hooks["maintenance"];
  rightsChanged?: Hooks["rightsChanged"];
  /** Run by `close()` before the database goes (a worker handing back what it holds). */
  shutdown?: Array<() => Promise<void>>;
  selfDeletion?: Hooks["selfDeletion"];
  reauthFactors?: Hooks["reauthFactors"];
  reseal?: Hooks["reseal"];
};

export type PluginDefinition<
  Id extends string = string,
  Deps extends readonly string[] = readonly string[],
  Uses extends readonly string[] = readonly string[],
  Routes extends AnyElysia = AnyElysia,
> = {
  /** The name in AUTH_PLUGINS. */
  id: Id;
  /** Plugins this one needs on; starting without them is a settings error naming AUTH_PLUGINS. */
  dependsOn?: Deps;
  /** Plugins this one works with when they are on, and without when they are off (the admin plugin shows passkeys if mfa is on). */
  uses?: Uses;
  /** Off unless AUTH_PLUGINS names it, when false; or on by default only when the settings say so. */
  onByDefault?: boolean | ((env: Record<string, unknown>) => boolean);
  settings?: SettingsSpec<z.ZodRawShape, object>;
  /** Rate limits (`COUNT/SECONDS` settings, `RATE_LIMIT_*`), checked at start with the other settings. */
  limits?: Record<`RATE_LIMIT_${string}`, z.ZodType<Limit, unknown>>;
  /** The plugin's drizzle tables. drizzle-kit reads plugins/*\/schema.ts; every table is migrated, on or off. */
  tables?: Record<string, unknown>;
  /** Every code the plugin's routes can answer, once each, with its one status and message. */
  errors?: ErrorCatalog;
  /** The plugin's email templates, loaded on the first mail (react-email weighs tens of MB). */
  emails?: TemplateLoaders;
  /** The extension points the plugin fills, installed when it is on. */
  hooks?: (ctx: AuthContext) => PluginHooks;
  /** What the plugin offers the plugins that depend on it (see PluginApis). */
  api?: (ctx: AuthContext) => ApiOf<Id>;
  /** The plugin's routes, thin: they validate, call the service and shape the answer. */
  routes(ctx: AuthContext, deps: DependencyApis<Deps> & OptionalApis<Uses>): Routes;
};

/** Declares a plugin; the identity, typed, so `routes` sees the APIs of exactly the plugins in `dependsOn` and `uses`. */
export function definePlugin<
  const Id extends string,
  const Deps extends readonly string[] = readonly [],
  const Uses extends readonly string[] = readonly [],
  Routes extends AnyElysia = AnyElysia,
>(definition: PluginDefinition<Id, Deps, Uses, Routes>): PluginDefinition<Id, Deps, Uses, Routes> {
  return definition;
}

// biome-ignore lint/suspicious/noExplicitAny: a list of plugins holds definitions of every shape
export type AnyPlugin = PluginDefinition<string, any, any, AnyElysia>;

/**
 * Installs the enabled plugins on a context, in dependency order: their hooks, then their APIs, then their routes.
 * `enabled` was checked at start (known ids, dependencies on).
 */
export function installPlugins(ctx: AuthContext, plugins: readonly AnyPlugin[], enabled: ReadonlySet<string>): AnyElysia[] {
  const apis: Record<string, unknown> = {};
  const routes: AnyElysia[] = [];
  for (const plugin of plugins) {
    if (!enabled.has(plugin.id)) continue;
    const hooks = plugin.hooks?.(ctx);
    if (hooks?.mfaChallenge) ctx.hooks.mfaChallenge = hooks.mfaChallenge;
    ctx.hooks.credentials.push(...(hooks?.credentials ?? []));
    ctx.hooks.maintenance.push(...(hooks?.maintenance ?? []));
    ctx.hooks.rightsChanged.push(...(hooks?.rightsChanged ?? []));
    ctx.hooks.shutdown.push(...(hooks?.shutdown ?? []));
    ctx.hooks.selfDeletion.push(...(hooks?.selfDeletion ?? []));
    ctx.hooks.reauthFactors.push(...(hooks?.reauthFactors ?? []));
    ctx.hooks.reseal.push(...(hooks?.reseal ?? []));
    if (plugin.api) apis[plugin.id] = plugin.api(ctx);
  }
  for (const plugin of plugins) {
    if (!enabled.has(plugin.id)) continue;
    // A used plugin that is off has no API here, so its entry is undefined, as OptionalApis says.
    const deps = Object.fromEntries([...(plugin.dependsOn ?? []), ...(plugin.uses ?? [])].map((id: string) => [id, apis[id]]));
    routes.push(plugin.routes(ctx, deps as never));
  }
  return routes;
}

/** A registered error code: its one status and message, and who declared it ("core" or a plugin id). */
export type RegisteredError = { status: number; message: string; owner: string };

/**
 * The one error registry: the core's codes and every plugin's, each declared once. A code declared twice (by two
 * plugins, or by a plugin and the core) is a programming error, refused when the server is composed.
 */
export function errorRegistryOf(core: ErrorCatalog, plugins: readonly AnyPlugin[]): ReadonlyMap<string, RegisteredError> {
  const registry = new Map<string, RegisteredError>();
  const declare = (owner: string, catalog: ErrorCatalog = {}) => {
    for (const [code, spec] of Object.entries(catalog)) {
      const earlier = registry.get(code);
      if (earlier) throw new Error(`error code ${code} is declared by ${earlier.owner} and again by ${owner}`);
      registry.set(code, { ...spec, owner });
    }
  };
  declare("core", core);
  for (const plugin of plugins) declare(plugin.id, plugin.errors);
  return registry;
}
