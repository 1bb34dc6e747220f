import { errorsFrom } from "../../src/errors";

/** Every code the magic-code plugin answers beyond the core's, once each. */
export const MAGIC_CODE_ERRORS = {
  USER_NOT_FOUND: { status: 401, message: "No account has this email" },
} as const;

export const magicCodeError = errorsFrom(MAGIC_CODE_ERRORS);
