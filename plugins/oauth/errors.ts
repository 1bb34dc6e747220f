import { errorsFrom } from "../../src/errors";

/** Every code the oauth plugin answers beyond the core's, once each (a failed redirect flow carries it as `?error=`). */
export const OAUTH_ERRORS = {
  UNTRUSTED_REDIRECT: { status: 400, message: "redirectTo is not under a trusted origin" },
  INVALID_STATE: { status: 400, message: "The sign-in attempt is unknown, expired or already used" },
  BROWSER_MISMATCH: {
    status: 400,
    message: "The sign-in was finished in another browser than the one that started it; start it again here",
  },
  INVALID_ID_TOKEN: { status: 401, message: "The ID token is invalid" },
  INVALID_ACCESS_TOKEN: { status: 401, message: "The access token is invalid" },
  ACCESS_DENIED: { status: 403, message: "The sign-in was cancelled at the provider" },
  SIGNUP_REQUIRED: { status: 404, message: "No account is linked to this identity" },
  PROVIDER_NOT_FOUND: { status: 404, message: "This sign-in provider is not available" },
  ACCOUNT_EXISTS: {
    status: 409,
    message: "An account already exists for this identity or email; sign in to it and link the provider from inside",
  },
  IDENTITY_IN_USE: { status: 409, message: "This identity is linked to another account" },
  PROVIDER_ALREADY_LINKED: { status: 409, message: "Another identity of this provider is already linked to the account" },
  LAST_SIGN_IN_METHOD: {
    status: 409,
    message: "This is the account's only way to sign in; add a password, passkey or another provider first",
  },
  OAUTH_PROVIDER_ERROR: { status: 502, message: "The sign-in provider did not answer as expected" },
} as const;

export const oauthError = errorsFrom(OAUTH_ERRORS);
