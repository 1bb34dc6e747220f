import type { AuthenticationResponseJSON } from "@simplewebauthn/server";
import type { z } from "zod";
import type { AuthContext, ReauthFactor } from "../../src/context";
import { errors } from "../../src/errors";
import { mfaError } from "./errors";
import { guessSecondFactor } from "./guesses";
import { verifyPasskeyAssertion } from "./passkeys";
import { spendRecoveryCode } from "./recovery";
import { spendTotpCode } from "./totp";

/**
 * The second factors a signed-in user proves again with (POST /auth/reauth): a TOTP code, a recovery code (spent, but
 * MFA stays on: the authenticator is not lost), or a passkey assertion of the user's own. Codes count against
 * RATE_LIMIT_MFA_USER like every other second-factor guess.
 */
export function mfaReauthFactors(ctx: AuthContext, passkeyResponse: z.ZodType<AuthenticationResponseJSON>): ReauthFactor[] {
  return [
    {
      field: "totpCode",
      strong: true,
      async verify(user, proof, meta) {
        const ok = await guessSecondFactor(ctx, user, meta, async () =>
          (await spendTotpCode(ctx, user.id, String(proof.totpCode), { confirmed: true })) ? true : null,
        );
        if (!ok) throw errors.invalidCode();
      },
    },
    {
      field: "recoveryCode",
      strong: true,
      async verify(user, proof, meta) {
        const ok = await guessSecondFactor(ctx, user, meta, async () =>
          (await spendRecoveryCode(ctx.db, user.id, String(proof.recoveryCode), ctx.clock.now())) ? true : null,
        );
        if (!ok) throw errors.invalidCode();
      },
    },
    {
      field: "passkeyResponse",
      strong: true,
      async verify(user, proof, meta) {
        const parsed = passkeyResponse.safeParse(proof.passkeyResponse);
        if (!parsed.success) throw errors.validation([{ path: "passkeyResponse", message: "is not a WebAuthn assertion" }]);
        const owner = await verifyPasskeyAssertion(ctx, { challengeId: String(proof.challengeId), response: parsed.data, meta });
        if (owner !== user.id) throw mfaError("PASSKEY_INVALID");
      },
    },
  ];
}
