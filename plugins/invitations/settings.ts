import { defineSettings, type SettingsOf } from "../../src/plugin";
import { appPath } from "../../src/settings-fields";

export const invitationsSettings = defineSettings({
  shape: {
    /** The invitation link is APP_URL + this path + `?token=...`. */
    INVITATION_PATH: appPath("/accept-invitation"),
  },
});

export type InvitationsSettings = SettingsOf<typeof invitationsSettings>;

declare module "../../src/config" {
  interface PluginSettings extends InvitationsSettings {}
}
