import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import { mailSetPasswordLink, spendResetLinks } from "./service";

/** What the password plugin offers the plugins that use it; the rest is its own. */
export type PasswordApi = {
  /** Mails the owner of an account made without a password a link that sets the first one, valid `days` days. */
  mailSetPasswordLink(user: { id: string; email: string }, days: number): Promise<void>;
  /** Spends every reset link of the user not used yet (its email changed: links sent to the old address must die), in `tx`. */
  spendResetLinks(tx: Db, userId: string): Promise<void>;
};

export function passwordApi(ctx: AuthContext): PasswordApi {
  return {
    mailSetPasswordLink: (user, days) => mailSetPasswordLink(ctx, user, days),
    spendResetLinks: (tx, userId) => spendResetLinks(tx, userId, ctx.clock.now()),
  };
}

declare module "../../src/plugin" {
  interface PluginApis {
    password: PasswordApi;
  }
}
