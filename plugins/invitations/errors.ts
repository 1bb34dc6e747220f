import { errorsFrom } from "../../src/errors";

/** Every code the invitations plugin answers beyond the core's, once each. */
export const INVITATIONS_ERRORS = {
  INVALID_INVITATION_TOKEN: { status: 400, message: "The invitation is invalid, used, revoked or has expired" },
} as const;

export const invitationsError = errorsFrom(INVITATIONS_ERRORS);
