import { errorsFrom } from "../../src/errors";

/** Every error code the admin plugin answers beyond the core's, once each. (USER_BANNED is the core's: it guards sign-in.) */
export const ADMIN_ERRORS = {
  LAST_ADMIN: { status: 409, message: "This would leave no admin who can act: make another admin first" },
  ADMIN_FROM_SETTINGS: { status: 409, message: "This user is an admin by ADMIN_EMAILS; change that setting to remove the role" },
} as const;

export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

export const adminError = errorsFrom(ADMIN_ERRORS);
