export * from "./schema";
export * from "../../plugins/password/schema";
export * from "../../plugins/oauth/schema";
export * from "../../plugins/mfa/schema";
export * from "../../plugins/teams/schema";
export * from "../../plugins/invitations/schema";
export * from "../../plugins/webhooks/schema";
