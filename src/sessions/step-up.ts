import type { AuthContext } from "../context";
import { coreError } from "../errors";
import type { AuthInfo } from "./service";

/**
 * Which proof a step-up route takes: `true`, a recent `auth_time` only; `"password"`, a route whose body carries the
 * current password (checked by the route) for an account that has one, so that password is proof enough.
 */
export type StepUpMode = true | "password";

export const reauthRequired = () => coreError("REAUTH_REQUIRED");

/** True when the session proved a factor within REAUTH_MAX_AGE_S; an impersonation token never has. */
export function hasRecentProof(ctx: AuthContext, auth: AuthInfo): boolean {
  if (auth.act) return false;
  const nowS = Math.floor(ctx.clock.now().getTime() / 1000);
  return nowS - auth.authTime <= ctx.config.REAUTH_MAX_AGE_S;
}

/**
 * Step-up: a route that adds, changes or removes a way into the account needs more than an access token, which may
 * be stolen (it lives for ACCESS_TOKEN_TTL_S and a refresh keeps its `auth_time`). Throws 403 REAUTH_REQUIRED.
 */
export async function assertRecentProof(ctx: AuthContext, auth: AuthInfo, mode: StepUpMode): Promise<void> {
  if (hasRecentProof(ctx, auth)) return;
  if (mode === "password" && !auth.act) {
    const user = await ctx.users.findById(auth.userId);
    if (user?.passwordHash) return;
  }
  throw reauthRequired();
}

/** The sentence every step-up route's OpenAPI description ends with. */
export const STEP_UP_NOTE =
  "Step-up: needs `auth_time` within REAUTH_MAX_AGE_S (a sign-in or `POST /reauth` that recent; a refresh does not renew it), " +
  "else `403 REAUTH_REQUIRED`, checked before the body; an impersonation token always gets `403 REAUTH_REQUIRED`.";
