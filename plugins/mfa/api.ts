import type { AuthContext } from "../../src/context";
import type { Db } from "../../src/db";
import { listPasskeys, type PasskeySummary } from "./passkeys";
import { turnMfaOff } from "./service";

/** What the mfa plugin offers the plugins that use it (`dependsOn` or `uses: ["mfa"]`); the rest is its own. */
export type MfaApi = {
  /** The user's passkeys, oldest first. */
  passkeysOf(userId: string): Promise<PasskeySummary[]>;
  /** Removes the user's TOTP secret and recovery codes and marks MFA off (passkeys stay), in `tx`. */
  turnOff(tx: Db, userId: string): Promise<void>;
};

export type { PasskeySummary };

export function mfaApi(ctx: AuthContext): MfaApi {
  return {
    passkeysOf: (userId) => listPasskeys(ctx, userId),
    async turnOff(tx, userId) {
      await turnMfaOff(ctx, tx, userId);
    },
  };
}

declare module "../../src/plugin" {
  interface PluginApis {
    mfa: MfaApi;
  }
}
