import type { AuthContext } from "../../src/context";
import { type LinkedAccount, listAccounts } from "./service";

/** What the oauth plugin offers the plugins that use it; the rest is its own. */
export type OAuthApi = {
  /** The providers linked to the user, oldest first. */
  accountsOf(userId: string): Promise<LinkedAccount[]>;
};

export type { LinkedAccount };

export function oauthApi(ctx: AuthContext): OAuthApi {
  return { accountsOf: (userId) => listAccounts(ctx, userId) };
}

declare module "../../src/plugin" {
  interface PluginApis {
    oauth: OAuthApi;
  }
}
