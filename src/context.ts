import type { AuditLog } from "./audit";
import type { OneTimeCodes } from "./codes";
import type { PasswordHasher } from "./passwords";
import type { Config } from "./config";
import type { Database, Db } from "./db";
import type { UserRow } from "./db/schema";
import type { KeyValueStore } from "./kv";
import type { Logger } from "./logger";
import type { Mailer } from "./mail";
import type { RateLimiter } from "./rate-limit";
import type { RequestMeta } from "./request";
import type { Sessions, TokenResponse } from "./sessions/service";
import type { AccessTokens } from "./tokens/access";
import type { ServerSecrets } from "./tokens/keys";
import type { Users } from "./users";

export type MfaChallenge = { mfaRequired: true; mfaToken: string; methods: string[] };
export type SignInResult = TokenResponse | MfaChallenge;
export type SignInOptions = {
  amr: string[];
  meta: RequestMeta;
  method: string;
  /** Asked once the session exists: false (the credential changed meanwhile) ends it and refuses the sign-in. */
  stillValid?: () => Promise<boolean>;
};

export type Clock = { now(): Date };

/** A kind of credential a plugin keeps; src/credentials.ts works over all of them. */
export type CredentialKind = {
  /** How many ways in of this kind the user has (a second factor alone is none). */
  countSignInMethods(userId: string, db: Db): Promise<number>;
  /** Removes the user's credentials of this kind, set up before anyone proved the mailbox; answers how many. */
  removeUnproven?(userId: string, db: Db): Promise<number>;
};

/** Extension points a plugin fills in, so the core calls them without knowing the plugin. */
export type Hooks = {
  /** Set by the mfa plugin: answers a sign-in of a user with MFA on. */
  mfaChallenge?: (user: UserRow, opts: { amr: string[]; meta: RequestMeta }) => Promise<MfaChallenge>;
  /** Registered by each plugin that keeps a kind of credential (a password, passkeys, TOTP, linked providers). */
  credentials: CredentialKind[];
  /**
   * Run inside the transaction that changes a team membership (`role` null: the member left or was removed), so what
   * hangs on the member's role (e.g. the invitations they sent) changes with it or not at all.
   */
  membershipChanged: Array<(change: { teamId: string; userId: string; role: string | null }, db: Db) => Promise<void>>;
  /** Periodic maintenance (e.g. sweeping stale guests); each runs on every instance and must be safe to overlap. */
  maintenance: Array<() => Promise<void>>;
};

/** Everything a plugin needs, made once in server.ts; tests swap the ports. */
export type AuthContext = {
  /** Unique per server instance; seeds plugin names so several servers can live in one process. */
  id: string;
  config: Config;
  database: Database;
  db: Db;
  kv: KeyValueStore;
  mailer: Mailer;
  clock: Clock;
  audit: AuditLog;
  rateLimit: RateLimiter;
  codes: OneTimeCodes;
  users: Users;
  sessions: Sessions;
  tokens: AccessTokens;
  /** Server secrets by purpose (sealing keys, MAC keys), made once and shared by every instance. */
  secrets: ServerSecrets;
  passwords: PasswordHasher;
  hooks: Hooks;
  /** For work that outlives its request (e.g. mail sent in the background), whose failures no one else sees. */
  logger: Logger;
  /** Finishes every sign-in path: an MfaChallenge for users with MFA, else `startSession`. */
  signIn(user: UserRow, opts: SignInOptions): Promise<SignInResult>;
  /**
   * A sign-in past every factor it needs: a new session and its tokens, the `sign_in` audit row, and a `new-sign-in`
   * mail to the user when the device (IP and user agent) is new to an account that has signed in before.
   */
  startSession(user: UserRow, opts: SignInOptions & { factor?: string }): Promise<TokenResponse>;
};
