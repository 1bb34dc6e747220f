import { defineSettings, type SettingsOf } from "../../src/plugin";
import { bool } from "../../src/settings-fields";

export const teamsSettings = defineSettings({
  shape: {
    /** A shared demo deployment: switching teams (which mints tokens for another team) is off. */
    DEMO_MODE: bool.default(false),
  },
});

export type TeamsSettings = SettingsOf<typeof teamsSettings>;

declare module "../../src/config" {
  interface PluginSettings extends TeamsSettings {}
}
