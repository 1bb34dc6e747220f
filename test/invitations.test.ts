import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { teamMembers } from "../plugins/teams/schema";
import type { TokenResponse } from "../src/sessions/service";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { movableClock } from "./support/users";

const ADMIN_EMAIL = uniqueEmail("global-admin");
const APP_URL = "https://app.example.com";
const clock = movableClock();

let server: TestServer;

beforeAll(async () => {
  server = await createTestServer({ AUTH_PLUGINS: "teams,invitations", ADMIN_EMAILS: ADMIN_EMAIL, APP_URL }, { clock });
}, 60_000);
afterAll(async () => {
  await server.close();
});

type Actor = { id: string; email: string; token: string };
type Role = "owner" | "admin" | "member";

async function makeUser(email = uniqueEmail()): Promise<Actor> {
  const user = await server.ctx.users.create({ email, emailVerified: true });
  const tokens = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  return { id: user.id, email, token: tokens.accessToken };
}

let globalAdmin: Actor;
beforeAll(async () => {
  globalAdmin = await makeUser(ADMIN_EMAIL);
  expect(decodeJwt(globalAdmin.token).roles).toContain("admin");
});

/** A team with one user of each role and an outsider; memberships are made directly, joining is what is under test here. */
async function teamWithEveryRole(name = "Acme") {
  const [owner, admin, member, outsider] = await Promise.all([makeUser(), makeUser(), makeUser(), makeUser()]);
  const res = await server.request("POST", "/auth/teams", { body: { name }, token: owner.token });
  expect(res.status).toBe(201);
  const teamId: string = res.body.id;
  await server.ctx.db.insert(teamMembers).values([
    { teamId, userId: admin.id, role: "admin" },
    { teamId, userId: member.id, role: "member" },
  ]);
  return { owner, admin, member, outsider, teamId };
}

function tokenFromMail(email: string): string {
  const text = server.mailer.last(email)?.text ?? "";
  const token = /token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
  if (!token) throw new Error(`no token in mail: ${text}`);
  return token;
}

async function invite(actor: Actor, body: { email: string; teamId?: string; role?: Role }) {
  const res = await server.request("POST", "/auth/invitations", { body, token: actor.token });
  expect(res.status).toBe(201);
  return { id: res.body.id as string, token: tokenFromMail(body.email) };
}

const accept = (body: Record<string, string>, token?: string) => server.request("POST", "/auth/invitations/accept", { body, token });
const validate = (token: string) => server.request("POST", "/auth/invitations/validate", { body: { token } });

async function roleOf(teamId: string, actor: Actor): Promise<string | undefined> {
  const res = await server.request("GET", `/auth/teams/${teamId}`, { token: actor.token });
  return res.status === 200 ? res.body.role : undefined;
}

describe("POST /auth/invitations", () => {
  test("a team owner invites: 201, and an email with the link, the team name and the inviter", async () => {
    const { owner, teamId } = await teamWithEveryRole("Research Lab");
    const email = uniqueEmail("invitee");
    const res = await server.request("POST", "/auth/invitations", { body: { email: `  ${email.toUpperCase()} `, teamId }, token: owner.token });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(String), email, teamId, role: "member", expiresAt: expect.any(String) });
    const week = new Date(res.body.expiresAt).getTime() - clock.now().getTime();
    expect(Math.abs(week - 7 * 24 * 3600 * 1000)).toBeLessThan(60_000);

    const mail = server.mailer.last(email);
    // Issue 17: the team name is attacker-written text, so it is in the body only, never in the subject.
    expect(mail?.subject).toBe("You have been invited to join a team");
    const token = tokenFromMail(email);
    expect(Buffer.from(token, "base64url")).toHaveLength(32);
    expect(mail?.text).toContain(`${APP_URL}/accept-invitation?token=${token}`);
    expect(mail?.html).toContain(`${APP_URL}/accept-invitation?token=${token}`);
    expect(mail?.text).toContain("Research Lab");
    expect(mail?.text).toContain(owner.email);
    expect(JSON.stringify(res.body)).not.toContain(token);
  });

  test("team admins invite too, by form; members and outsiders get 403 FORBIDDEN", async () => {
    const { admin, member, outsider, teamId } = await teamWithEveryRole();
    const email = uniqueEmail();
    const byAdmin = await server.request("POST", "/auth/invitations", { form: { email, teamId, role: "admin" }, token: admin.token });
    expect(byAdmin.status).toBe(201);
    expect(byAdmin.body.role).toBe("admin");
    for (const actor of [member, outsider]) {
      const res = await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail(), teamId }, token: actor.token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
  });

  test("only owners (and global admins) invite owners", async () => {
    const { owner, admin, teamId } = await teamWithEveryRole();
    const byAdmin = await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail(), teamId, role: "owner" }, token: admin.token });
    expect(byAdmin.status).toBe(403);
    expect(byAdmin.body.code).toBe("FORBIDDEN");
    await invite(owner, { email: uniqueEmail(), teamId, role: "owner" });
    await invite(globalAdmin, { email: uniqueEmail(), teamId, role: "owner" });
  });

  test("global admins invite to any team or to none; others cannot invite without a team", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    await invite(globalAdmin, { email: uniqueEmail(), teamId });
    const email = uniqueEmail("teamless");
    await invite(globalAdmin, { email });
    expect(server.mailer.last(email)?.subject).toBe("You have been invited");
    const byOwner = await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail() }, token: owner.token });
    expect(byOwner.status).toBe(403);
    expect(byOwner.body.code).toBe("FORBIDDEN");
    const unknown = await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail(), teamId: crypto.randomUUID() }, token: globalAdmin.token });
    expect(unknown.status).toBe(404);
    const unknownToOwner = await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail(), teamId: crypto.randomUUID() }, token: owner.token });
    expect(unknownToOwner.status).toBe(403);
  });

  test("400 VALIDATION_ERROR for bad emails, team ids and roles; 401 without a token", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    for (const body of [{}, { email: "nope", teamId }, { email: "a@example.com,b@example.com", teamId }, { email: uniqueEmail(), teamId: "x" }, { email: uniqueEmail(), teamId, role: "god" }]) {
      const res = await server.request("POST", "/auth/invitations", { body, token: owner.token });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
    expect((await server.request("POST", "/auth/invitations", { body: { email: uniqueEmail(), teamId } })).status).toBe(401);
  });

  test("a new invitation replaces the pending one for the same email and team", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const email = uniqueEmail();
    const first = await invite(owner, { email, teamId });
    const second = await invite(owner, { email, teamId });
    expect((await validate(first.token)).body).toEqual({ valid: false });
    expect((await validate(second.token)).body.valid).toBe(true);
  });
});

describe("GET /auth/invitations", () => {
  test("team admins and owners see their team's pending invitations; members and outsiders see none (200 [])", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    const pending = await invite(owner, { email: uniqueEmail(), teamId });
    const revoked = await invite(owner, { email: uniqueEmail(), teamId });
    expect((await server.request("DELETE", `/auth/invitations/${revoked.id}`, { token: owner.token })).status).toBe(204);
    const acceptedEmail = uniqueEmail();
    const accepted = await invite(owner, { email: acceptedEmail, teamId });
    expect((await accept({ token: accepted.token, password: "correct horse battery" })).status).toBe(200);

    for (const actor of [owner, admin, globalAdmin]) {
      const res = await server.request("GET", `/auth/invitations?teamId=${teamId}`, { token: actor.token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual([
        { id: pending.id, email: expect.any(String), teamId, role: "member", expiresAt: expect.any(String), createdAt: expect.any(String) },
      ]);
    }
    for (const actor of [member, outsider]) {
      const res = await server.request("GET", `/auth/invitations?teamId=${teamId}`, { token: actor.token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
    }
    expect((await server.request("GET", "/auth/invitations?teamId=nope", { token: owner.token })).status).toBe(400);
    expect((await server.request("GET", "/auth/invitations")).status).toBe(401);
  });

  test("without teamId: the invitations of the teams one administers; global admins see all, teamless ones too", async () => {
    const a = await teamWithEveryRole("A");
    const b = await teamWithEveryRole("B");
    const inA = await invite(a.owner, { email: uniqueEmail(), teamId: a.teamId });
    const inB = await invite(b.admin, { email: uniqueEmail(), teamId: b.teamId });
    const teamless = await invite(globalAdmin, { email: uniqueEmail() });
    const ids = async (actor: Actor) =>
      ((await server.request("GET", "/auth/invitations", { token: actor.token })).body as Array<{ id: string }>).map((i) => i.id);
    expect(await ids(a.owner)).toEqual([inA.id]);
    expect(await ids(a.admin)).toEqual([inA.id]);
    expect(await ids(b.owner)).toEqual([inB.id]);
    expect(await ids(a.member)).toEqual([]);
    expect(await ids(a.outsider)).toEqual([]);
    expect(await ids(globalAdmin)).toEqual(expect.arrayContaining([inA.id, inB.id, teamless.id]));
  });
});

describe("DELETE /auth/invitations/:id", () => {
  test("owners, admins and global admins revoke; members and outsiders get 404; a revoked token no longer works", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    const invitations = await Promise.all([0, 1, 2].map(() => invite(owner, { email: uniqueEmail(), teamId })));
    const [first, second, third] = invitations as [(typeof invitations)[0], (typeof invitations)[0], (typeof invitations)[0]];
    for (const actor of [member, outsider]) {
      const res = await server.request("DELETE", `/auth/invitations/${first.id}`, { token: actor.token });
      expect(res.status).toBe(404);
    }
    expect((await server.request("DELETE", `/auth/invitations/${first.id}`, { token: owner.token })).status).toBe(204);
    expect((await server.request("DELETE", `/auth/invitations/${second.id}`, { token: admin.token })).status).toBe(204);
    expect((await server.request("DELETE", `/auth/invitations/${third.id}`, { token: globalAdmin.token })).status).toBe(204);
    expect((await server.request("DELETE", `/auth/invitations/${first.id}`, { token: owner.token })).status).toBe(404);
    expect((await server.request("DELETE", "/auth/invitations/not-a-uuid", { token: owner.token })).status).toBe(404);
    expect((await server.request("DELETE", `/auth/invitations/${crypto.randomUUID()}`, { token: globalAdmin.token })).status).toBe(404);
    const res = await accept({ token: first.token, password: "correct horse battery" });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_INVITATION_TOKEN");
  });

  test("team admins cannot revoke teamless invitations; global admins can", async () => {
    const { owner } = await teamWithEveryRole();
    const teamless = await invite(globalAdmin, { email: uniqueEmail() });
    expect((await server.request("DELETE", `/auth/invitations/${teamless.id}`, { token: owner.token })).status).toBe(404);
    expect((await server.request("DELETE", `/auth/invitations/${teamless.id}`, { token: globalAdmin.token })).status).toBe(204);
  });
});

describe("POST /auth/invitations/validate", () => {
  test("valid tokens tell the email and team; others just valid: false; the token is not spent", async () => {
    const { owner, teamId } = await teamWithEveryRole("Validators");
    const email = uniqueEmail();
    const { token } = await invite(owner, { email, teamId });
    expect((await validate(token)).body).toEqual({ valid: true, email, teamName: "Validators" });
    const form = await server.request("POST", "/auth/invitations/validate", { form: { token } });
    expect(form.body).toEqual({ valid: true, email, teamName: "Validators" });
    const teamlessEmail = uniqueEmail();
    const teamless = await invite(globalAdmin, { email: teamlessEmail });
    expect((await validate(teamless.token)).body).toEqual({ valid: true, email: teamlessEmail });
    expect((await validate("x".repeat(43))).body).toEqual({ valid: false });
    expect((await server.request("POST", "/auth/invitations/validate", { body: {} })).status).toBe(400);
    expect((await accept({ token, password: "correct horse battery" })).status).toBe(200);
    expect((await validate(token)).body).toEqual({ valid: false });
  });
});

describe("POST /auth/invitations/accept", () => {
  test("without a session: a new verified account with the password and names, in the team with the invited role", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const email = uniqueEmail("new");
    const { token } = await invite(owner, { email, teamId, role: "admin" });
    const res = await server.request("POST", "/auth/invitations/accept", {
      form: { token, password: "correct horse battery", firstName: " Grace ", lastName: "Hopper" },
    });
    expect(res.status).toBe(200);
    const body = res.body as TokenResponse;
    expect(body.tokenType).toBe("Bearer");
    expect(body.user).toMatchObject({ email, emailVerified: true, firstName: "Grace", lastName: "Hopper", isAnonymous: false });
    expect(decodeJwt(body.accessToken).amr).toEqual(["invite"]);
    const me = { id: body.user.id, email, token: body.accessToken };
    expect(await roleOf(teamId, me)).toBe("admin");
    const stored = await server.ctx.users.findByEmail(email);
    expect(await server.ctx.passwords.verify("correct horse battery", stored?.passwordHash ?? null)).toBe(true);
    const again = await accept({ token, password: "correct horse battery" });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe("INVALID_INVITATION_TOKEN");
  });

  test("a missing or weak password is refused and the token stays usable", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const email = uniqueEmail();
    const { token } = await invite(owner, { email, teamId });
    const missing = await accept({ token });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe("VALIDATION_ERROR");
    expect(missing.body.details).toEqual([{ path: "password", message: expect.any(String) }]);
    const weak = await accept({ token, password: "short" });
    expect(weak.status).toBe(400);
    expect(weak.body.code).toBe("WEAK_PASSWORD");
    expect((await validate(token)).body.valid).toBe(true);
    expect(await server.ctx.users.findByEmail(email)).toBeUndefined();
  });

  test("an existing account: 409 EMAIL_TAKEN without a session, then accepted with its own Bearer token", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const existing = await makeUser();
    const { token } = await invite(owner, { email: existing.email, teamId });
    const taken = await accept({ token, password: "correct horse battery" });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("EMAIL_TAKEN");
    expect(taken.body.message).toContain("sign in");
    expect((await validate(token)).body.valid).toBe(true);

    const res = await accept({ token }, existing.token);
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(existing.id);
    expect(await roleOf(teamId, existing)).toBe("member");
    expect((await accept({ token }, existing.token)).body.code).toBe("INVALID_INVITATION_TOKEN");
  });

  test("accepted with a Bearer token: the caller's own session gets the pair, with its auth_time and amr; no session starts", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const existing = await makeUser();
    const { token } = await invite(owner, { email: existing.email, teamId });
    const before = await server.request("GET", "/auth/sessions", { token: existing.token });
    const res = await accept({ token }, existing.token);
    expect(res.status).toBe(200);
    const [was, now] = [decodeJwt(existing.token), decodeJwt(res.body.accessToken)];
    expect(now.sid).toBe(was.sid);
    expect(now.auth_time).toBe(was.auth_time);
    expect(now.amr).toEqual(was.amr);
    const after = await server.request("GET", "/auth/sessions", { token: res.body.accessToken });
    expect(after.body).toHaveLength(before.body.length);
    expect(await roleOf(teamId, existing)).toBe("member");
  });

  test("another signed-in user gets 403 FORBIDDEN and the token stays usable", async () => {
    const { owner, outsider, teamId } = await teamWithEveryRole();
    const invitee = await makeUser();
    const { token } = await invite(owner, { email: invitee.email, teamId });
    const res = await accept({ token }, outsider.token);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("FORBIDDEN");
    expect(await roleOf(teamId, outsider)).toBeUndefined();
    expect((await accept({ token }, invitee.token)).status).toBe(200);
  });

  test("an existing membership keeps its role", async () => {
    const { owner, admin, teamId } = await teamWithEveryRole();
    const { token } = await invite(owner, { email: admin.email, teamId, role: "member" });
    expect((await accept({ token }, admin.token)).status).toBe(200);
    expect(await roleOf(teamId, admin)).toBe("admin");
  });

  test("two concurrent accepts of one token: exactly one wins", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const email = uniqueEmail("race");
    const { token } = await invite(owner, { email, teamId });
    const results = await Promise.all([0, 1].map(() => accept({ token, password: "correct horse battery" })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(results.find((r) => r.status === 400)?.body.code).toBe("INVALID_INVITATION_TOKEN");

    const existing = await makeUser();
    const second = await invite(owner, { email: existing.email, teamId });
    const both = await Promise.all([0, 1].map(() => accept({ token: second.token }, existing.token)));
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
  });

  test("bad input: 400 for a missing token, INVALID_INVITATION_TOKEN for an unknown one", async () => {
    expect((await accept({ password: "correct horse battery" })).status).toBe(400);
    const unknown = await accept({ token: "y".repeat(43), password: "correct horse battery" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.code).toBe("INVALID_INVITATION_TOKEN");
  });

  // Last in the file: it moves the shared clock a week ahead, past every session made above.
  test("an invitation expires after 7 days", async () => {
    const { owner, teamId } = await teamWithEveryRole();
    const email = uniqueEmail("late");
    const { token } = await invite(owner, { email, teamId });
    clock.advance(7 * 24 * 3600 - 60);
    expect((await validate(token)).body.valid).toBe(true);
    clock.advance(120);
    expect((await validate(token)).body).toEqual({ valid: false });
    const res = await accept({ token, password: "correct horse battery" });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("INVALID_INVITATION_TOKEN");
  });
});
