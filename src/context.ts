import type { AuditLog } from "./audit";
import type { OneTimeCodes } from "./codes";
import type { PasswordHasher } from "./passwords";
import type { Config } from "./config";
import type { Database, Db } from "./db";
import type { UserRow } from "./db/schema";
import type { Events } from "./events";
import type { AuthHooks, SignUpAttempt } from "./hooks";
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
  /**
   * Asked of the user's row as it is once the session exists: false (the credential changed meanwhile) ends it and
   * refuses the sign-in.
   */
  stillValid?: (current: { passwordHash: string | null }) => boolean;
  /**
   * The account was made by this very request (a guest upgraded was not): a sign-in that fails deletes it again, as
   * DELETE /auth/me does, so the client that was told its sign-up failed can simply retry it.
   */
  madeNow?: boolean;
  /** With `madeNow`: restores what else the sign-up spent (an invitation's token), once the account is deleted. */
  giveBack?: () => Promise<void>;
};

export type { Clock } from "./clock";
import type { Clock } from "./clock";

/** A kind of credential a plugin keeps; src/credentials.ts works over all of them. */
export type CredentialKind = {
  /** How many ways in of this kind the user has (a second factor alone is none). */
  countSignInMethods(userId: string, db: Db): Promise<number>;
  /** Removes the user's credentials of this kind, set up before anyone proved the mailbox; answers how many. */
  removeUnproven?(userId: string, db: Db): Promise<number>;
};

/** What `POST /auth/reauth` may carry; each factor a plugin keeps reads its own fields. */
export type ReauthProof = {
  password?: string;
  totpCode?: string;
  recoveryCode?: string;
  emailCode?: string;
  challengeId?: string;
  passkeyResponse?: unknown;
};

/** A factor a plugin can check again for a signed-in user (`POST /auth/reauth`). */
export type ReauthFactor = {
  /** The body field that carries it (a passkey's `challengeId` comes with its `passkeyResponse`). */
  field: Exclude<keyof ReauthProof, "challengeId">;
  /** A second factor (TOTP, recovery code, passkey): proof enough for an account with MFA on. */
  strong: boolean;
  /** Throws the factor's own error when it is wrong (`400 INVALID_CODE`, `401 INVALID_CREDENTIALS`). */
  verify(user: UserRow, proof: ReauthProof, meta: RequestMeta): Promise<void>;
};

/** Extension points a plugin fills in, so the core calls them without knowing the plugin. */
export type Hooks = {
  /** Set by the mfa plugin: answers a sign-in of a user with MFA on. */
  mfaChallenge?: (user: UserRow, opts: { amr: string[]; meta: RequestMeta }) => Promise<MfaChallenge>;
  /** Registered by each plugin that keeps a kind of credential (a password, passkeys, TOTP, linked providers). */
  credentials: CredentialKind[];
  /** Registered by each plugin that keeps a factor a signed-in user can prove again, by the body field it reads. */
  reauthFactors: ReauthFactor[];
  /**
   * Run inside the transaction that may take rights from a user (a team role changed or ended, global roles changed,
   * a ban), once the change is written, so what hangs on those rights (the invitations they sent) goes with them.
   */
  rightsChanged: Array<(userId: string, db: Db) => Promise<void>>;
  /** Periodic maintenance (e.g. sweeping stale guests); each runs on every instance and must be safe to overlap. */
  maintenance: Array<() => Promise<void>>;
  /** Run by `close()` before the database goes (e.g. a worker handing back the rows it holds). */
  shutdown: Array<() => Promise<void>>;
  /**
   * Asked in the transaction of a user's own deletion (`DELETE /auth/me`), once the user's row is locked; throwing
   * refuses it and nothing is deleted (the admin plugin keeps the last admin).
   */
  selfDeletion: Array<(userId: string, tx: Db) => Promise<void>>;
  /**
   * Registered by each plugin that keeps data sealed with `secrets.seal` (TOTP secrets): seals again with the first key
   * of ENCRYPTION_KEYS what an older key sealed, and answers how many (`auth-server keys reencrypt`).
   */
  reseal: Array<() => Promise<number>>;
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
  /** Events out (`emit(tx, event)` in the transaction of the change); a plugin (webhooks) fills in where they go. */
  events: Events;
  /** The host app's in-process hooks (library mode). */
  appHooks: AuthHooks;
  /** Asks the host app's beforeSignUp, before any path writes a new account; its throw refuses the sign-up. */
  beforeSignUp(attempt: SignUpAttempt): Promise<void>;
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
