import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import { teamMembers } from "../plugins/teams/schema";
import type { TokenResponse } from "../src/sessions/service";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

const PLUGINS = { AUTH_PLUGINS: "teams" };

let server: TestServer;

beforeAll(async () => {
  server = await createTestServer(PLUGINS);
}, 60_000);
afterAll(async () => {
  await server.close();
});

type Member = { id: string; email: string; token: string; refreshToken: string };

async function makeUser(target: TestServer = server, label = "user"): Promise<Member> {
  const user = await target.ctx.users.create({ email: uniqueEmail(label), emailVerified: true, firstName: "Ada", lastName: label });
  const tokens = await target.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: null } });
  return { id: user.id, email: user.email ?? "", token: tokens.accessToken, refreshToken: tokens.refreshToken };
}

async function createTeam(owner: Member, name = "Acme"): Promise<string> {
  const res = await server.request("POST", "/auth/teams", { body: { name }, token: owner.token });
  expect(res.status).toBe(201);
  return res.body.id;
}

/** A team with one user of each role, and an outsider. */
async function teamWithEveryRole() {
  const owner = await makeUser(server, "owner");
  const admin = await makeUser(server, "admin");
  const member = await makeUser(server, "member");
  const outsider = await makeUser(server, "outsider");
  const teamId = await createTeam(owner);
  await addMember(owner, teamId, admin, "admin");
  await addMember(owner, teamId, member, "member");
  return { owner, admin, member, outsider, teamId };
}

/** Joining is the invitations plugin's job, so the membership row is made directly; the role is then given through the API. */
async function addMember(owner: Member, teamId: string, user: Member, role: "owner" | "admin" | "member") {
  await server.ctx.db.insert(teamMembers).values({ teamId, userId: user.id, role: "member" });
  if (role !== "member") {
    const res = await server.request("PATCH", `/auth/teams/${teamId}/members/${user.id}`, { body: { role }, token: owner.token });
    expect(res.status).toBe(200);
  }
}

const teamClaim = (tokens: Pick<TokenResponse, "accessToken">) => decodeJwt(tokens.accessToken).team;

async function refresh(refreshToken: string) {
  const res = await server.request("POST", "/auth/refresh", { body: { refreshToken } });
  expect(res.status).toBe(200);
  return res.body as TokenResponse;
}

async function switchTo(user: Member, teamId: string) {
  const res = await server.request("POST", "/auth/teams/switch", { body: { teamId }, token: user.token });
  expect(res.status).toBe(200);
  return res.body as TokenResponse;
}

describe("POST /auth/teams", () => {
  test("201 with the creator as owner; the name is trimmed; form bodies work", async () => {
    const owner = await makeUser();
    const res = await server.request("POST", "/auth/teams", { body: { name: "  Research  " }, token: owner.token });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: expect.any(String), name: "Research", role: "owner", createdAt: expect.any(String) });
    const form = await server.request("POST", "/auth/teams", { form: { name: "Form team" }, token: owner.token });
    expect(form.status).toBe(201);
    expect(form.body.name).toBe("Form team");
    const members = await server.request("GET", `/auth/teams/${res.body.id}/members`, { token: owner.token });
    expect(members.body).toEqual([{ userId: owner.id, email: owner.email, firstName: "Ada", lastName: "user", role: "owner" }]);
  });

  test("400 VALIDATION_ERROR for a missing, blank or too long name; 401 without a token", async () => {
    const owner = await makeUser();
    for (const body of [{}, { name: "   " }, { name: "x".repeat(101) }, { name: 5 }]) {
      const res = await server.request("POST", "/auth/teams", { body, token: owner.token });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
    }
    expect((await server.request("POST", "/auth/teams", { body: { name: "x".repeat(100) }, token: owner.token })).status).toBe(201);
    expect((await server.request("POST", "/auth/teams", { body: { name: "Acme" } })).status).toBe(401);
  });
});

describe("GET /auth/teams and /auth/teams/:id", () => {
  test("lists only the caller's teams with the caller's role", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    const other = await createTeam(outsider, "Elsewhere");
    expect((await server.request("GET", "/auth/teams", { token: owner.token })).body).toEqual([{ id: teamId, name: "Acme", role: "owner" }]);
    expect((await server.request("GET", "/auth/teams", { token: admin.token })).body).toEqual([{ id: teamId, name: "Acme", role: "admin" }]);
    expect((await server.request("GET", "/auth/teams", { token: member.token })).body).toEqual([{ id: teamId, name: "Acme", role: "member" }]);
    expect((await server.request("GET", "/auth/teams", { token: outsider.token })).body).toEqual([{ id: other, name: "Elsewhere", role: "owner" }]);
    expect((await server.request("GET", "/auth/teams")).status).toBe(401);
  });

  test("members see the team with their role; others, unknown and malformed ids get 404", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    for (const [user, role] of [
      [owner, "owner"],
      [admin, "admin"],
      [member, "member"],
    ] as const) {
      const res = await server.request("GET", `/auth/teams/${teamId}`, { token: user.token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: teamId, name: "Acme", createdAt: expect.any(String), role });
    }
    for (const path of [`/auth/teams/${teamId}`, `/auth/teams/${crypto.randomUUID()}`, "/auth/teams/not-a-uuid", "/auth/teams/1'%20or%201=1"]) {
      const res = await server.request("GET", path, { token: outsider.token });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe("NOT_FOUND");
    }
  });
});

describe("PATCH /auth/teams/:id", () => {
  test("owners and admins rename; members get 403 FORBIDDEN; outsiders 404", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    const byOwner = await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: " Renamed " }, token: owner.token });
    expect(byOwner.status).toBe(200);
    expect(byOwner.body).toEqual({ id: teamId, name: "Renamed", createdAt: expect.any(String), role: "owner" });
    const byAdmin = await server.request("PATCH", `/auth/teams/${teamId}`, { form: { name: "By admin" }, token: admin.token });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.role).toBe("admin");
    const byMember = await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: "Nope" }, token: member.token });
    expect(byMember.status).toBe(403);
    expect(byMember.body.code).toBe("FORBIDDEN");
    const byOutsider = await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: "Nope" }, token: outsider.token });
    expect(byOutsider.status).toBe(404);
    expect((await server.request("PATCH", "/auth/teams/bad-id", { body: { name: "Nope" }, token: owner.token })).status).toBe(404);
    expect((await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: "" }, token: owner.token })).status).toBe(400);
    expect((await server.request("GET", `/auth/teams/${teamId}`, { token: member.token })).body.name).toBe("By admin");
  });
});

describe("DELETE /auth/teams/:id", () => {
  test("owners only: admins and members get 403, outsiders 404; afterwards the team is gone for everyone", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    for (const user of [admin, member]) {
      const res = await server.request("DELETE", `/auth/teams/${teamId}`, { token: user.token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
    expect((await server.request("DELETE", `/auth/teams/${teamId}`, { token: outsider.token })).status).toBe(404);
    expect((await server.request("DELETE", "/auth/teams/nope", { token: owner.token })).status).toBe(404);
    const res = await server.request("DELETE", `/auth/teams/${teamId}`, { token: owner.token });
    expect(res.status).toBe(204);
    for (const user of [owner, admin, member]) {
      expect((await server.request("GET", `/auth/teams/${teamId}`, { token: user.token })).status).toBe(404);
      expect((await server.request("GET", "/auth/teams", { token: user.token })).body).toEqual([]);
    }
  });
});

describe("GET /auth/teams/:id/members", () => {
  test("every member sees the list; outsiders get 404", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    for (const user of [owner, admin, member]) {
      const res = await server.request("GET", `/auth/teams/${teamId}/members`, { token: user.token });
      expect(res.status).toBe(200);
      expect(res.body.map((m: { userId: string; role: string }) => [m.userId, m.role])).toEqual([
        [owner.id, "owner"],
        [admin.id, "admin"],
        [member.id, "member"],
      ]);
      expect(res.body[1]).toEqual({ userId: admin.id, email: admin.email, firstName: "Ada", lastName: "admin", role: "admin" });
    }
    expect((await server.request("GET", `/auth/teams/${teamId}/members`, { token: outsider.token })).status).toBe(404);
  });
});

describe("PATCH /auth/teams/:id/members/:userId", () => {
  const patchRole = (actor: Member, teamId: string, userId: string, role: string) =>
    server.request("PATCH", `/auth/teams/${teamId}/members/${userId}`, { body: { role }, token: actor.token });

  test("admins change members and admins, but neither make nor change owners", async () => {
    const { owner, admin, member, teamId } = await teamWithEveryRole();
    const promoted = await patchRole(admin, teamId, member.id, "admin");
    expect(promoted.status).toBe(200);
    expect(promoted.body).toEqual({ userId: member.id, email: member.email, firstName: "Ada", lastName: "member", role: "admin" });
    expect((await patchRole(admin, teamId, member.id, "member")).body.role).toBe("member");
    for (const [target, role] of [
      [member, "owner"],
      [owner, "admin"],
      [owner, "member"],
    ] as const) {
      const res = await patchRole(admin, teamId, target.id, role);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("FORBIDDEN");
    }
    expect((await patchRole(admin, teamId, admin.id, "member")).body.role).toBe("member");
  });

  test("members get 403 FORBIDDEN, outsiders 404, unknown members 404, bad roles 400", async () => {
    const { owner, member, outsider, teamId } = await teamWithEveryRole();
    const byMember = await patchRole(member, teamId, member.id, "admin");
    expect(byMember.status).toBe(403);
    expect(byMember.body.code).toBe("FORBIDDEN");
    expect((await patchRole(outsider, teamId, member.id, "member")).status).toBe(404);
    expect((await patchRole(owner, teamId, outsider.id, "member")).status).toBe(404);
    expect((await patchRole(owner, teamId, "not-a-uuid", "member")).status).toBe(404);
    expect((await patchRole(owner, "not-a-uuid", member.id, "member")).status).toBe(404);
    const bad = await patchRole(owner, teamId, member.id, "superuser");
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("VALIDATION_ERROR");
  });

  test("owners make and demote owners, but the last owner cannot be demoted (409 LAST_OWNER)", async () => {
    const { owner, admin, teamId } = await teamWithEveryRole();
    const lone = await patchRole(owner, teamId, owner.id, "admin");
    expect(lone.status).toBe(409);
    expect(lone.body.code).toBe("LAST_OWNER");
    const made = await server.request("PATCH", `/auth/teams/${teamId}/members/${admin.id}`, { form: { role: "owner" }, token: owner.token });
    expect(made.status).toBe(200);
    expect(made.body.role).toBe("owner");
    expect((await patchRole(admin, teamId, owner.id, "member")).body.role).toBe("member");
    expect((await patchRole(admin, teamId, admin.id, "admin")).body.code).toBe("LAST_OWNER");
  });

  test("two owners stepping down at once: exactly one wins, the other gets 409 LAST_OWNER", async () => {
    const { owner, admin, teamId } = await teamWithEveryRole();
    expect((await patchRole(owner, teamId, admin.id, "owner")).status).toBe(200);
    const results = await Promise.all([patchRole(owner, teamId, owner.id, "member"), patchRole(admin, teamId, admin.id, "member")]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)?.body.code).toBe("LAST_OWNER");
    const members = await server.request("GET", `/auth/teams/${teamId}/members`, { token: owner.token });
    expect(members.body.filter((m: { role: string }) => m.role === "owner")).toHaveLength(1);
  });
});

describe("DELETE /auth/teams/:id/members/:userId", () => {
  const remove = (actor: Member, teamId: string, userId: string) =>
    server.request("DELETE", `/auth/teams/${teamId}/members/${userId}`, { token: actor.token });

  test("admins remove members and admins but not owners; members remove no one else", async () => {
    const { owner, admin, member, teamId } = await teamWithEveryRole();
    const other = await makeUser();
    await addMember(owner, teamId, other, "member");
    const byMember = await remove(member, teamId, other.id);
    expect(byMember.status).toBe(403);
    expect(byMember.body.code).toBe("FORBIDDEN");
    const adminOnOwner = await remove(admin, teamId, owner.id);
    expect(adminOnOwner.status).toBe(403);
    expect(adminOnOwner.body.code).toBe("FORBIDDEN");
    expect((await remove(admin, teamId, other.id)).status).toBe(204);
    expect((await server.request("GET", `/auth/teams/${teamId}`, { token: other.token })).status).toBe(404);
    expect((await remove(admin, teamId, other.id)).status).toBe(404);
    expect((await remove(owner, teamId, admin.id)).status).toBe(204);
  });

  test("anyone may leave, but not the last owner (409 LAST_OWNER); an owner removes another owner", async () => {
    const { owner, admin, member, outsider, teamId } = await teamWithEveryRole();
    expect((await remove(member, teamId, member.id)).status).toBe(204);
    expect((await remove(outsider, teamId, outsider.id)).status).toBe(404);
    expect((await remove(outsider, teamId, owner.id)).status).toBe(404);
    const last = await remove(owner, teamId, owner.id);
    expect(last.status).toBe(409);
    expect(last.body.code).toBe("LAST_OWNER");
    expect((await server.request("PATCH", `/auth/teams/${teamId}/members/${admin.id}`, { body: { role: "owner" }, token: owner.token })).status).toBe(200);
    expect((await remove(admin, teamId, owner.id)).status).toBe(204);
    expect((await remove(admin, teamId, admin.id)).body.code).toBe("LAST_OWNER");
  });

  test("two owners leaving at once: exactly one leaves", async () => {
    const { owner, admin, teamId } = await teamWithEveryRole();
    expect((await server.request("PATCH", `/auth/teams/${teamId}/members/${admin.id}`, { body: { role: "owner" }, token: owner.token })).status).toBe(200);
    const results = await Promise.all([remove(owner, teamId, owner.id), remove(admin, teamId, admin.id)]);
    expect(results.map((r) => r.status).sort()).toEqual([204, 409]);
  });
});

describe("POST /auth/teams/switch", () => {
  test("answers tokens whose access token carries the team and role; refreshes keep it", async () => {
    const { admin, teamId } = await teamWithEveryRole();
    expect(decodeJwt(admin.token).team).toBeUndefined();
    const switched = await switchTo(admin, teamId);
    expect(switched.tokenType).toBe("Bearer");
    expect(switched.user.id).toBe(admin.id);
    expect(teamClaim(switched)).toEqual({ id: teamId, role: "admin" });
    expect(decodeJwt(switched.accessToken).sid).toBe(decodeJwt(admin.token).sid);
    const refreshed = await refresh(switched.refreshToken);
    expect(teamClaim(refreshed)).toEqual({ id: teamId, role: "admin" });
    const session = await server.request("GET", "/auth/session", { token: refreshed.accessToken });
    expect(session.body.session.teamId).toBe(teamId);
  });

  test("403 NOT_A_MEMBER for outsiders, unknown and malformed ids; 400 without teamId; form bodies work", async () => {
    const { member, outsider, teamId } = await teamWithEveryRole();
    for (const [user, id] of [
      [outsider, teamId],
      [member, crypto.randomUUID()],
      [member, "not-a-uuid"],
    ] as const) {
      const res = await server.request("POST", "/auth/teams/switch", { body: { teamId: id }, token: user.token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("NOT_A_MEMBER");
    }
    expect((await server.request("POST", "/auth/teams/switch", { body: {}, token: member.token })).status).toBe(400);
    const form = await server.request("POST", "/auth/teams/switch", { form: { teamId }, token: member.token });
    expect(form.status).toBe(200);
    expect(teamClaim(form.body)).toEqual({ id: teamId, role: "member" });
  });

  test("a removed member's team claim dies at once; the session lives on and its next refresh has no team", async () => {
    const { owner, member, teamId } = await teamWithEveryRole();
    const switched = await switchTo(member, teamId);
    expect((await server.request("GET", "/auth/me", { token: switched.accessToken })).status).toBe(200);
    expect((await server.request("DELETE", `/auth/teams/${teamId}/members/${member.id}`, { token: owner.token })).status).toBe(204);
    const stale = await server.request("GET", "/auth/me", { token: switched.accessToken });
    expect(stale.status).toBe(401);
    expect(stale.body.code).toBe("TEAM_CLAIM_REVOKED");
    const refreshed = await refresh(switched.refreshToken);
    expect(teamClaim(refreshed)).toBeUndefined();
    expect((await server.request("GET", "/auth/me", { token: refreshed.accessToken })).status).toBe(200);
    expect((await server.request("GET", `/auth/teams/${teamId}`, { token: refreshed.accessToken })).status).toBe(404);
  });

  test("leaving, the team's deletion and a role change all reach the next refresh", async () => {
    const { owner, admin, member, teamId } = await teamWithEveryRole();
    const memberSwitch = await switchTo(member, teamId);
    const adminSwitch = await switchTo(admin, teamId);
    const ownerSwitch = await switchTo(owner, teamId);

    expect((await server.request("PATCH", `/auth/teams/${teamId}/members/${admin.id}`, { body: { role: "member" }, token: owner.token })).status).toBe(200);
    const demoted = await refresh(adminSwitch.refreshToken);
    expect(teamClaim(demoted)).toEqual({ id: teamId, role: "member" });
    // The token claiming "admin" died with the role change; the refreshed one says "member" and cannot rename.
    expect((await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: "x" }, token: adminSwitch.accessToken })).status).toBe(401);
    expect((await server.request("PATCH", `/auth/teams/${teamId}`, { body: { name: "x" }, token: demoted.accessToken })).status).toBe(403);

    expect((await server.request("DELETE", `/auth/teams/${teamId}/members/${member.id}`, { token: member.token })).status).toBe(204);
    expect(teamClaim(await refresh(memberSwitch.refreshToken))).toBeUndefined();

    expect((await server.request("DELETE", `/auth/teams/${teamId}`, { token: owner.token })).status).toBe(204);
    expect(teamClaim(await refresh(ownerSwitch.refreshToken))).toBeUndefined();
    expect(teamClaim(await refresh(demoted.refreshToken))).toBeUndefined();
  });

  test("403 DEMO_MODE when DEMO_MODE=true", async () => {
    const demo = await createTestServer({ ...PLUGINS, DEMO_MODE: true });
    try {
      const owner = await makeUser(demo);
      const created = await demo.request("POST", "/auth/teams", { body: { name: "Demo" }, token: owner.token });
      expect(created.status).toBe(201);
      const res = await demo.request("POST", "/auth/teams/switch", { body: { teamId: created.body.id }, token: owner.token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe("DEMO_MODE");
    } finally {
      await demo.close();
    }
  }, 30_000);
});
