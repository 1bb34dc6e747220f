import { Elysia } from "elysia";
import { z } from "zod";
import type { AuthContext } from "../../src/context";
import { errorSchema, tokenResponseSchema } from "../../src/core-routes";
import { authGuard } from "../../src/sessions/guard";
import { STEP_UP_NOTE } from "../../src/sessions/step-up";
import { requireEmail } from "../../src/users";
import { emailField, requiredString } from "../../src/validation";
import { definePlugin } from "../../src/plugin";
import { mfaApi } from "./api";
import { issueMfaChallenge } from "./challenge";
import { resealTotpSecrets } from "./totp";
import { mfaReauthFactors } from "./reauth";
import { MFA_ERRORS } from "./errors";
import { mfaLimits, mfaSettings } from "./settings";
import * as tables from "./schema";
import { countPasskeys, deletePasskey, listPasskeys, loginOptions, loginWithPasskey, registerPasskey, registrationOptions } from "./passkeys";
import { confirmTotp, disableMfa, recoverWithCode, regenerateRecoveryCodes, removeAllFactors, setupTotp, verifyMfa } from "./service";

const codeField = requiredString(64);
const recoveryCodesSchema = z.object({ recoveryCodes: z.array(z.string()) });
const passkeySchema = z.object({ id: z.string(), name: z.string().nullable(), createdAt: z.string() });
const passkeyListSchema = z.array(passkeySchema.extend({ lastUsedAt: z.string().nullable() }));

const base64url = z.string().max(16_384).regex(/^[A-Za-z0-9_-]*$/, "must be base64url");

/** A form body carries the credential as a JSON string; a JSON body carries the object itself. */
export function credentialField<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => {
    if (typeof value !== "string") return value;
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }, schema);
}

const credentialBase = {
  id: base64url.min(1),
  rawId: base64url.min(1),
  type: z.literal("public-key"),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
  clientExtensionResults: z.object({}).loose(),
};

export const registrationResponseSchema = z.object({
  ...credentialBase,
  response: z.object({
    clientDataJSON: base64url,
    attestationObject: base64url,
    authenticatorData: base64url.optional(),
    transports: z.array(z.string().max(32)).max(16).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url.optional(),
  }),
});

export const authenticationResponseSchema = z.object({
  ...credentialBase,
  response: z.object({
    clientDataJSON: base64url,
    authenticatorData: base64url,
    signature: base64url,
    userHandle: base64url.optional(),
  }),
});

const credentialDescriptorSchema = z.object({ id: z.string(), type: z.string(), transports: z.array(z.string()).optional() });
const userVerificationSchema = z.enum(["required", "preferred", "discouraged"]);

/** PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3), as @simplewebauthn/server makes it. */
const creationOptionsSchema = z.object({
  rp: z.object({ id: z.string().optional(), name: z.string() }),
  user: z.object({ id: z.string(), name: z.string(), displayName: z.string() }),
  challenge: z.string(),
  pubKeyCredParams: z.array(z.object({ alg: z.number(), type: z.literal("public-key") })),
  timeout: z.number().optional(),
  excludeCredentials: z.array(credentialDescriptorSchema).optional(),
  authenticatorSelection: z
    .object({
      authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
      requireResidentKey: z.boolean().optional(),
      residentKey: z.enum(["required", "preferred", "discouraged"]).optional(),
      userVerification: userVerificationSchema.optional(),
    })
    .optional(),
  hints: z.array(z.string()).optional(),
  attestation: z.enum(["none", "indirect", "direct", "enterprise"]).optional(),
  attestationFormats: z.array(z.string()).optional(),
  extensions: z.object({ credProps: z.boolean().optional() }).optional(),
});

/** PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3). */
const requestOptionsSchema = z.object({
  challenge: z.string(),
  timeout: z.number().optional(),
  rpId: z.string().optional(),
  allowCredentials: z.array(credentialDescriptorSchema).optional(),
  userVerification: userVerificationSchema.optional(),
  hints: z.array(z.string()).optional(),
});

/** Second factors: TOTP with recovery codes, and passkeys (which sign in on their own). */
export function mfaPlugin(ctx: AuthContext) {
  return new Elysia({ name: "plugin.mfa", seed: ctx.id, detail: { tags: ["mfa"] } })
    .use(authGuard(ctx))
    .post("/mfa/totp/setup", ({ auth }) => setupTotp(ctx, auth.userId), {
      stepUp: true,
      response: { 200: z.object({ secret: z.string(), otpauthUrl: z.string(), qrCode: z.string() }), 401: errorSchema, 403: errorSchema, 409: errorSchema },
      detail: {
        summary: "Start TOTP enrolment",
        description:
          "Makes a new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) and answers it in base32, as an `otpauth://` URL and as a PNG data URL " +
          "of its QR code. MFA is not on until `POST /mfa/totp/confirm`; calling this again replaces an unconfirmed secret. " +
          "`409 MFA_ALREADY_ENABLED` when MFA is on (turn it off first). The secret is stored encrypted (AES-256-GCM). " +
          STEP_UP_NOTE,
      },
    })
    .post("/mfa/totp/confirm", ({ auth, body, meta }) => confirmTotp(ctx, auth.userId, body.code, meta), {
      stepUp: true,
      body: z.object({ code: codeField }),
      response: { 200: recoveryCodesSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema, 429: errorSchema },
      detail: {
        summary: "Confirm TOTP enrolment and turn MFA on",
        description:
          "Checks a code from the authenticator app (one step of skew either way), turns MFA on and answers 10 recovery codes " +
          "(`xxxxx-xxxxx`, 50 bits each; shown once, stored hashed). `400 INVALID_CODE` for a wrong or replayed code; " +
          "`400 MFA_SETUP_REQUIRED` without a pending setup; `409 MFA_ALREADY_ENABLED`; `429` after 5 wrong codes in 15 minutes. " +
          STEP_UP_NOTE,
      },
    })
    .post("/mfa/verify", ({ body, meta }) => verifyMfa(ctx, { mfaToken: body.mfaToken, code: body.code, meta }), {
      body: z.object({ mfaToken: requiredString(256), code: codeField }),
      response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema },
      detail: {
        summary: "Finish a sign-in with a TOTP code",
        description:
          "Takes the `mfaToken` of an `MfaChallenge` and a current TOTP code; answers `200 TokenResponse` (`amr` gains `otp`). " +
          "Each code works once (`400 INVALID_CODE` on a replay). `401 MFA_TOKEN_INVALID` when the token is spent (it works once), " +
          "older than 5 minutes, or dead after 5 wrong codes.",
      },
    })
    .post("/mfa/recover", ({ body, meta }) => recoverWithCode(ctx, { mfaToken: body.mfaToken, recoveryCode: body.recoveryCode, meta }), {
      body: z.object({ mfaToken: requiredString(256), recoveryCode: codeField }),
      response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema },
      detail: {
        summary: "Finish a sign-in with a recovery code",
        description:
          "For a user who lost their authenticator: spends one recovery code (each works once, even under concurrent use) and turns MFA " +
          "off (secret and remaining codes deleted), then answers `200 TokenResponse`. `400 INVALID_CODE` for a wrong or spent code " +
          "(counts against the token); `401 MFA_TOKEN_INVALID` as for `/mfa/verify`.",
      },
    })
    .post(
      "/mfa/disable",
      async ({ auth, body, meta, set }) => {
        await disableMfa(ctx, auth.userId, body.code, meta);
        set.status = 204;
      },
      {
        auth: true,
        body: z.object({ code: codeField }),
        response: { 204: z.void(), 400: errorSchema, 401: errorSchema, 429: errorSchema },
        detail: {
          summary: "Turn MFA off",
          description:
            "Needs a current TOTP code or an unused recovery code. Deletes the secret and the recovery codes; passkeys stay. " +
            "`400 INVALID_CODE`; `400 MFA_NOT_ENABLED`; `429` after 5 wrong codes in 15 minutes.",
        },
      },
    )
    .post("/mfa/recovery-codes", ({ auth, body, meta }) => regenerateRecoveryCodes(ctx, auth.userId, body.code, meta), {
      stepUp: true,
      body: z.object({ code: codeField }),
      response: { 200: recoveryCodesSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
      detail: {
        summary: "Make a new set of recovery codes",
        description:
          "Needs a current TOTP code. Answers 10 new recovery codes; every old one stops working. `400 INVALID_CODE`; `400 MFA_NOT_ENABLED`. " +
          STEP_UP_NOTE,
      },
    })
    .post("/passkeys/register/options", ({ auth }) => registrationOptions(ctx, auth.userId), {
      stepUp: true,
      response: { 200: creationOptionsSchema, 401: errorSchema, 403: errorSchema },
      detail: {
        summary: "Options to register a passkey",
        description:
          "`PublicKeyCredentialCreationOptionsJSON` for `navigator.credentials.create()` (e.g. `startRegistration` of @simplewebauthn/browser). " +
          "Resident key and user verification preferred; the user's passkeys are excluded. The challenge lasts 5 minutes and works once; " +
          `a new call replaces it. ${STEP_UP_NOTE}`,
      },
    })
    .post(
      "/passkeys/register/verify",
      async ({ auth, body, meta, set }) => {
        const created = await registerPasskey(ctx, { userId: auth.userId, response: body.response, name: body.name, meta });
        set.status = 201;
        return created;
      },
      {
        stepUp: true,
        body: z.object({ response: credentialField(registrationResponseSchema), name: z.string().trim().min(1).max(100).optional() }),
        response: { 201: passkeySchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema },
        detail: {
          summary: "Register a passkey",
          description:
            "Verifies the browser's registration `response` (JSON object, or a JSON string in a form body) against the pending challenge. " +
            "`400 INVALID_CHALLENGE` when there is none (spent or expired); `400 PASSKEY_INVALID` when the response does not verify; " +
            `\`409 PASSKEY_EXISTS\` for a credential already registered. ${STEP_UP_NOTE}`,
        },
      },
    )
    .post("/passkeys/login/options", ({ body }) => loginOptions(ctx, body?.email ? requireEmail(body.email) : undefined), {
      body: z.object({ email: emailField.optional() }).optional(),
      response: { 200: z.object({ challengeId: z.string(), options: requestOptionsSchema }), 400: errorSchema },
      detail: {
        summary: "Options to sign in with a passkey",
        description:
          "`{challengeId, options}` where `options` is `PublicKeyCredentialRequestOptionsJSON` (user verification required). " +
          "Without `email` the browser offers its discoverable passkeys; with one, that account's passkeys are listed " +
          "(an email without passkeys gets a look-alike list, so the answer does not reveal registered emails). " +
          "The challenge lasts 5 minutes and works once.",
      },
    })
    .post("/passkeys/login/verify", ({ body, meta }) => loginWithPasskey(ctx, { challengeId: body.challengeId, response: body.response, meta }), {
      body: z.object({ challengeId: requiredString(256), response: credentialField(authenticationResponseSchema) }),
      response: { 200: tokenResponseSchema, 400: errorSchema, 401: errorSchema, 429: errorSchema },
      detail: {
        summary: "Sign in with a passkey",
        description:
          'A verified passkey assertion with user verification is a full sign-in (`amr` `["passkey"]`, no MFA challenge): `200 TokenResponse`. ' +
          "`401 INVALID_CHALLENGE` when the challenge is unknown, spent or expired (a response works once); `401 PASSKEY_INVALID` for an " +
          "unknown credential, a bad signature, no user verification, or a signature counter that did not move forward. " +
          "Rate-limited with `RATE_LIMIT_LOGIN_IP`.",
      },
    })
    .get("/passkeys", ({ auth }) => listPasskeys(ctx, auth.userId), {
      auth: true,
      response: { 200: passkeyListSchema, 401: errorSchema },
      detail: { summary: "The caller's passkeys", description: "Oldest first: `[{id, name, createdAt, lastUsedAt}]`." },
    })
    .delete(
      "/passkeys/:id",
      async ({ auth, params, meta, set }) => {
        await deletePasskey(ctx, auth.userId, params.id, meta);
        set.status = 204;
      },
      {
        stepUp: true,
        params: z.object({ id: z.string().max(64) }),
        response: { 204: z.void(), 401: errorSchema, 403: errorSchema, 404: errorSchema },
        detail: { summary: "Delete one of the caller's passkeys", description: `\`404\` for an unknown id or someone else's passkey. ${STEP_UP_NOTE}` },
      },
    );
}
export default definePlugin({
  id: "mfa",
  settings: mfaSettings,
  limits: mfaLimits,
  tables,
  errors: MFA_ERRORS,
  hooks: (ctx) => ({
    mfaChallenge: async (user, { amr, meta }) => issueMfaChallenge(ctx, user, { amr, meta }),
    credentials: [{ countSignInMethods: countPasskeys, removeUnproven: removeAllFactors }],
    reauthFactors: mfaReauthFactors(ctx, credentialField(authenticationResponseSchema)),
    reseal: [() => resealTotpSecrets(ctx)],
  }),
  api: mfaApi,
  routes: mfaPlugin,
});
