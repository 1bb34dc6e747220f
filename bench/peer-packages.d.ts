// The peer's packages (better-auth, pg) are bench/'s own dependencies, installed by bench/run.ts when a run first
// needs them, not by the root install. These declarations type the few calls bench/peer-better-auth.ts makes, so
// `bun run typecheck` checks bench/ on a clean clone too.

declare module "better-auth" {
  export type BetterAuthOptions = {
    database: unknown;
    secret: string;
    baseURL: string;
    emailAndPassword: { enabled: boolean };
    rateLimit: { enabled: boolean };
    telemetry: { enabled: boolean };
    logger: { disabled: boolean };
    session?: { cookieCache?: { enabled: boolean; maxAge?: number } };
  };
  export type BetterAuth = {
    options: BetterAuthOptions;
    handler: (request: Request) => Promise<Response>;
    api: {
      signUpEmail(input: { body: { email: string; password: string; name: string } }): Promise<unknown>;
      getSession(input: { headers: Headers; returnHeaders: true }): Promise<{ headers: Headers; response: unknown }>;
    };
  };
  export function betterAuth(options: BetterAuthOptions): BetterAuth;
}

declare module "better-auth/db/migration" {
  import type { BetterAuthOptions } from "better-auth";
  export function getMigrations(options: BetterAuthOptions): Promise<{ runMigrations(): Promise<void> }>;
}

declare module "pg" {
  export class Pool {
    constructor(config: { connectionString: string; max?: number });
    query<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
  }
}
