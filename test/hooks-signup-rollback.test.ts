import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { invitations } from "../plugins/invitations/schema";
import { users } from "../src/db/schema";
import type { AuthHooks } from "../src/hooks";
import type { Logger } from "../src/logger";
import type { MailMessage } from "../src/mail";
import { AuthError } from "../src/server";
import { startTestIdp, type TestIdp } from "./support/oidc-provider";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "./support/server";
import { createSignedInUser } from "./support/users";

/**
 * A sign-in that completes a sign-up and fails in a hook (API.md, Library mode: "leaves nothing half-done"): the
 * account that request made is deleted again, so the same sign-up, retried once the hook works, succeeds instead of
 * answering 409 EMAIL_TAKEN (or a 202, or a spent token) for an account the client was told failed. A guest upgrade
 * is not a new account and is never deleted.
 */

const PASSWORD = "correct horse battery staple";
const APP_URL = "http://localhost:3000";
const CALLBACK = `${APP_URL}/auth/oauth/oidc/callback`;

type Failure = { name: string; hook: "accessTokenClaims" | "afterSignIn"; status: number; code: string; error(): Error };

const FAILURES: Failure[] = [
  { name: "accessTokenClaims throws a plain Error", hook: "accessTokenClaims", status: 500, code: "INTERNAL_ERROR", error: () => new Error("claims service down") },
  { name: "afterSignIn throws a plain Error", hook: "afterSignIn", status: 500, code: "INTERNAL_ERROR", error: () => new Error("crm is down") },
  {
    name: "afterSignIn throws an AuthError",
    hook: "afterSignIn",
    status: 403,
    code: "SIGN_IN_REFUSED",
    error: () => new AuthError(403, "SIGN_IN_REFUSED", "Not today"),
  },
];

/** The failure the hooks act out now (none: they work), and the users they were handed while failing. */
let failing: Failure | undefined;
const failedFor: string[] = [];

function actOut(hook: Failure["hook"], userId: string) {
  if (failing?.hook !== hook) return;
  failedFor.push(userId);
  throw failing.error();
}

/** An address whose account an admin bans while its sign-up's sign-in runs (set by the test that needs it). */
let bannedMeanwhile: string | undefined;

const hooks: AuthHooks = {
  async accessTokenClaims(user) {
    await Bun.sleep(1);
    if (user.email === bannedMeanwhile) await server.ctx.db.update(users).set({ banned: true }).where(eq(users.id, user.id));
    actOut("accessTokenClaims", user.id);
    return { plan: "pro" };
  },
  async afterSignIn(user) {
    await Bun.sleep(1);
    actOut("afterSignIn", user.id);
  },
};

const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };

// Unique per run: the Postgres pass shares its database with earlier runs.
const ADMIN_EMAIL = uniqueEmail("rollback-admin");

let idp: TestIdp;
let server: TestServer;
let inviterToken: string;

beforeAll(async () => {
  idp = await startTestIdp(CALLBACK);
  server = await createTestServer(
    {
      AUTH_PLUGINS: "password,magic-code,anonymous,teams,invitations,oauth",
      APP_URL,
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: idp.clientId,
      OIDC_CLIENT_SECRET: idp.clientSecret,
      ADMIN_EMAILS: ADMIN_EMAIL,
    },
    { hooks, logger },
  );
  const { tokens } = await createSignedInUser(server, { email: ADMIN_EMAIL });
  inviterToken = tokens.accessToken;
}, 60_000);
afterAll(async () => {
  await server.close();
  await idp.close();
});

function codeIn(mail: MailMessage | undefined): string {
  const code = /\b(\d{6})\b/.exec(mail?.text ?? "")?.[1];
  if (!code) throw new Error(`no code in mail: ${mail?.text}`);
  return code;
}

async function userExists(id: string): Promise<boolean> {
  const rows = await server.ctx.db.select({ id: users.id }).from(users).where(eq(users.id, id));
  return rows.length === 1;
}

async function usersWithEmail(email: string): Promise<number> {
  return (await server.ctx.db.select({ id: users.id }).from(users).where(eq(users.email, email))).length;
}

/** An account-creating path: `prepare` sets up what the sign-up needs, `attempt` sends it (again, for a retry). */
type SignUpPath = {
  name: string;
  success: number;
  prepare(): Promise<{ email: string | null; attempt(): Promise<TestResponse> }>;
};

const PATHS: SignUpPath[] = [
  {
    name: "POST /auth/register (no email verification)",
    success: 201,
    async prepare() {
      const email = uniqueEmail("rb-register");
      return { email, attempt: () => server.request("POST", "/auth/register", { body: { email, password: PASSWORD } }) };
    },
  },
  {
    name: "POST /auth/code/verify for an unknown email",
    success: 200,
    async prepare() {
      const email = uniqueEmail("rb-code");
      return {
        email,
        // A code is spent by its first verify, failed or not: each attempt asks for a fresh one.
        async attempt() {
          const requested = await server.request("POST", "/auth/code/request", { body: { email } });
          expect(requested.status).toBe(202);
          return server.request("POST", "/auth/code/verify", { body: { email, code: codeIn(server.mailer.last(email)) } });
        },
      };
    },
  },
  {
    name: "POST /auth/anonymous",
    success: 201,
    async prepare() {
      return { email: null, attempt: () => server.request("POST", "/auth/anonymous", { body: {} }) };
    },
  },
  {
    name: "POST /auth/invitations/accept into a new account",
    success: 200,
    async prepare() {
      const email = uniqueEmail("rb-invite");
      const invited = await server.request("POST", "/auth/invitations", { body: { email }, token: inviterToken });
      expect(invited.status).toBe(201);
      const token = /token=([A-Za-z0-9_-]+)/.exec(server.mailer.last(email)?.text ?? "")?.[1];
      if (!token) throw new Error("no invitation token");
      return { email, attempt: () => server.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD } }) };
    },
  },
  {
    name: "POST /auth/oauth/oidc/token with mode signup",
    success: 200,
    async prepare() {
      const email = uniqueEmail("rb-oidc");
      const idToken = await idp.signIdToken({ sub: `rb-${crypto.randomUUID()}`, email, email_verified: true, iss: idp.issuer, aud: idp.clientId });
      return { email, attempt: () => server.request("POST", "/auth/oauth/oidc/token", { body: { idToken, mode: "signup" } }) };
    },
  },
];

describe("a sign-up whose sign-in fails in a hook leaves no account behind", () => {
  for (const path of PATHS) {
    for (const failure of FAILURES) {
      test(`${path.name}: ${failure.name}`, async () => {
        const { email, attempt } = await path.prepare();
        failedFor.length = 0;
        failing = failure;
        let failed: TestResponse;
        try {
          failed = await attempt();
        } finally {
          failing = undefined;
        }
        expect(failed.status).toBe(failure.status);
        expect(failed.body.code).toBe(failure.code);
        expect(failedFor).toHaveLength(1);
        const [madeId = ""] = failedFor;
        expect(await userExists(madeId)).toBe(false);
        if (email) expect(await usersWithEmail(email)).toBe(0);

        const retried = await attempt();
        expect(retried.status).toBe(path.success);
        expect(retried.body.accessToken).toEqual(expect.any(String));
        if (email) expect(retried.body.user.email).toBe(email);
        expect(await userExists(retried.body.user.id)).toBe(true);
      });
    }
  }

  test("the invitation a failed acceptance spent is pending again", async () => {
    const email = uniqueEmail("rb-invite-pending");
    const invited = await server.request("POST", "/auth/invitations", { body: { email }, token: inviterToken });
    const token = /token=([A-Za-z0-9_-]+)/.exec(server.mailer.last(email)?.text ?? "")?.[1] ?? "";
    failing = FAILURES[0];
    try {
      expect((await server.request("POST", "/auth/invitations/accept", { body: { token, password: PASSWORD } })).status).toBe(500);
    } finally {
      failing = undefined;
    }
    const [row] = await server.ctx.db.select().from(invitations).where(eq(invitations.id, invited.body.id));
    expect(row?.acceptedAt).toBeNull();
    expect((await server.request("POST", "/auth/invitations/validate", { body: { token } })).body).toMatchObject({ valid: true, email });
  });

  test("a sign-in that is not a sign-up keeps its account: login with afterSignIn throwing", async () => {
    const email = uniqueEmail("rb-login");
    const made = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(made.status).toBe(201);
    failing = FAILURES[1];
    try {
      expect((await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } })).status).toBe(500);
    } finally {
      failing = undefined;
    }
    expect(await userExists(made.body.user.id)).toBe(true);
  });
});

describe("a guest upgrade whose sign-in fails in a hook", () => {
  /**
   * The guest existed before the request, so it is not deleted. What stays is the upgrade itself: the account keeps its
   * id, now with the email and password (no longer a guest), without the new session. Registering again is then a
   * new sign-up of a taken email (409 EMAIL_TAKEN); signing in with that email and password reaches the same account.
   */
  for (const failure of FAILURES.slice(0, 2)) {
    test(`POST /auth/register with a guest's token: ${failure.name}`, async () => {
      const { user: guest, tokens } = await createSignedInUser(server, { email: null, emailVerified: false, isAnonymous: true });
      const email = uniqueEmail("rb-guest");
      failing = failure;
      let failed: TestResponse;
      try {
        failed = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, token: tokens.accessToken });
      } finally {
        failing = undefined;
      }
      expect(failed.status).toBe(500);
      expect(failed.body.code).toBe("INTERNAL_ERROR");
      expect(await server.ctx.users.findById(guest.id)).toMatchObject({ id: guest.id, email, isAnonymous: false });

      const again = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD }, token: tokens.accessToken });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe("EMAIL_TAKEN");
      const login = await server.request("POST", "/auth/login", { body: { email, password: PASSWORD } });
      expect(login.status).toBe(200);
      expect(login.body.user.id).toBe(guest.id);
    });
  }
});

describe("a sign-up that cannot be undone", () => {
  test("the client still gets the hook's error, and the failed deletion is logged", async () => {
    const email = uniqueEmail("rb-undo-fails");
    const deleteUser = server.ctx.sessions.deleteUser.bind(server.ctx.sessions);
    server.ctx.sessions.deleteUser = async () => {
      throw new Error("database went away");
    };
    failing = FAILURES[0];
    lines.length = 0;
    let failed: TestResponse;
    try {
      failed = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    } finally {
      failing = undefined;
      server.ctx.sessions.deleteUser = deleteUser;
    }
    expect(failed.status).toBe(500);
    expect(failed.body.code).toBe("INTERNAL_ERROR");
    const undo = lines.find((line) => line.level === "error" && JSON.stringify(line.fields).includes("database went away"));
    expect(undo?.fields).toMatchObject({ userId: failedFor.at(-1) });
    expect(JSON.stringify(lines)).toContain("claims service down");
  });
});

describe("a sign-up banned while its sign-in runs", () => {
  test("answers 403 USER_BANNED and keeps the banned account: the undo does not undo an admin's ban", async () => {
    const email = uniqueEmail("rb-banned");
    bannedMeanwhile = email;
    let answer: TestResponse;
    try {
      answer = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    } finally {
      bannedMeanwhile = undefined;
    }
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe("USER_BANNED");
    const [row] = await server.ctx.db.select({ banned: users.banned }).from(users).where(eq(users.email, email));
    expect(row?.banned).toBe(true);
    const again = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(again.status).toBe(409);
  });
});

describe("a sign-up banned while its sign-in runs, whose sign-in then fails otherwise", () => {
  test("keeps the banned account although the hook's error is not USER_BANNED: the undo's delete refuses a banned row", async () => {
    const email = uniqueEmail("rb-banned-fail");
    const logged = lines.length;
    bannedMeanwhile = email;
    failing = FAILURES[0];
    let answer: TestResponse;
    try {
      answer = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    } finally {
      bannedMeanwhile = undefined;
      failing = undefined;
    }
    expect(answer.status).toBe(500);
    expect(answer.body.code).toBe("INTERNAL_ERROR");
    const [row] = await server.ctx.db.select({ banned: users.banned }).from(users).where(eq(users.email, email));
    expect(row?.banned).toBe(true);
    expect(lines.slice(logged).some((line) => line.msg.includes("not undone"))).toBe(false);
    const again = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("EMAIL_TAKEN");
  });
});
