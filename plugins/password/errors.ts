import { errorsFrom } from "../../src/errors";

/** Every code the password plugin answers beyond the core's, once each. */
export const PASSWORD_ERRORS = {
  PASSWORD_MISMATCH: { status: 400, message: "The passwords do not match" },
  INVALID_RESET_TOKEN: { status: 400, message: "The reset link is invalid or has expired" },
  EMAIL_NOT_VERIFIED: { status: 403, message: "Confirm your email address before signing in" },
} as const;

export const passwordError = errorsFrom(PASSWORD_ERRORS);
