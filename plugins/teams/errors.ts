import { errorsFrom } from "../../src/errors";

/** Every code the teams plugin answers beyond the core's, once each. */
export const TEAMS_ERRORS = {
  DEMO_MODE: { status: 403, message: "Switching teams is disabled in demo mode" },
  NOT_A_MEMBER: { status: 403, message: "You are not a member of this team" },
  LAST_OWNER: { status: 409, message: "A team must keep at least one owner" },
} as const;

export const teamsError = errorsFrom(TEAMS_ERRORS);
