import { errorsFrom } from "../../src/errors";

/** Every code the mfa plugin answers beyond the core's, once each. */
export const MFA_ERRORS = {
  MFA_NOT_ENABLED: { status: 400, message: "MFA is not on for this account" },
  MFA_SETUP_REQUIRED: { status: 400, message: "Start with POST /mfa/totp/setup" },
  INVALID_REGISTRATION_CHALLENGE: {
    status: 400,
    message: "No passkey registration is under way, or it expired; ask for new registration options",
  },
  INVALID_PASSKEY_REGISTRATION: { status: 400, message: "The passkey registration could not be verified" },
  MFA_TOKEN_INVALID: { status: 401, message: "The MFA token is invalid, spent or expired; sign in again" },
  INVALID_CHALLENGE: { status: 401, message: "The passkey challenge is unknown, spent or expired; ask for new options" },
  PASSKEY_INVALID: { status: 401, message: "The passkey could not be verified" },
  MFA_ALREADY_ENABLED: { status: 409, message: "MFA is already on; turn it off first" },
  PASSKEY_EXISTS: { status: 409, message: "This passkey is already registered" },
} as const;

export const mfaError = errorsFrom(MFA_ERRORS);
