import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { invitations } from "../../plugins/invitations/schema";
import { passkeys } from "../../plugins/mfa/schema";
import { oauthAccounts } from "../../plugins/oauth/schema";
import { newId } from "../../src/crypto";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: objects of others. Every route that takes an id is tried by an attacker with the victim's ids:
 * never a success, and the victim's object is intact afterwards.
 */
let server: TestServer;
let attacker: string;
let victim: { id: string; token: string; sessionId: string; teamId: string; memberId: string; invitationId: string; passkeyId: string };

beforeAll(async () => {
  server = await createTestServer();
  attacker = (await createSignedInUser(server)).tokens.accessToken;
  const v = await createSignedInUser(server);
  const token = v.tokens.accessToken;
  const session = await server.request("GET", "/auth/session", { token });
  const team = await server.request("POST", "/auth/teams", { token, body: { name: "Victim team" } });
  const member = await createSignedInUser(server);
  const memberEmail = member.user.email!;
  await server.request("POST", "/auth/invitations", { token, body: { email: memberEmail, teamId: team.body.id } });
  await Bun.sleep(0);
  const inviteToken = decodeURIComponent(/token=([^\s"&]+)/.exec(server.mailer.last(memberEmail)?.text ?? "")?.[1] ?? "");
  expect((await server.request("POST", "/auth/invitations/accept", { token: member.tokens.accessToken, body: { token: inviteToken } })).status).toBe(200);
  const pending = await server.request("POST", "/auth/invitations", { token, body: { email: uniqueEmail("pending"), teamId: team.body.id } });
  const passkeyId = newId();
  await server.ctx.db.insert(passkeys).values({ id: passkeyId, userId: v.user.id, credentialId: `victim-${crypto.randomUUID()}`, publicKey: "cGs", name: "Victim key" });
  await server.ctx.db.insert(oauthAccounts).values({ id: newId(), userId: v.user.id, provider: "google", providerAccountId: `victim-${crypto.randomUUID()}` });
  victim = {
    id: v.user.id,
    token,
    sessionId: session.body.session.id,
    teamId: team.body.id,
    memberId: member.user.id,
    invitationId: pending.body.id,
    passkeyId,
  };
});
afterAll(async () => {
  await server.close();
});

function refused(res: { status: number }) {
  expect([403, 404]).toContain(res.status);
}

describe("another user's ids", () => {
  test("DELETE /sessions/:id with the victim's session id -> 404, the victim's session lives", async () => {
    refused(await server.request("DELETE", `/auth/sessions/${victim.sessionId}`, { token: attacker }));
    expect((await server.request("GET", "/auth/me", { token: victim.token })).status).toBe(200);
  });

  test("DELETE /passkeys/:id with the victim's passkey id -> 404, the passkey stays", async () => {
    refused(await server.request("DELETE", `/auth/passkeys/${victim.passkeyId}`, { token: attacker }));
    const rows = await server.ctx.db.select().from(passkeys).where(eq(passkeys.id, victim.passkeyId));
    expect(rows.length).toBe(1);
  });

  test("GET /teams/:id of the victim's team -> 403/404", async () => {
    refused(await server.request("GET", `/auth/teams/${victim.teamId}`, { token: attacker }));
  });

  test("PATCH /teams/:id of the victim's team -> 403/404, the name is unchanged", async () => {
    refused(await server.request("PATCH", `/auth/teams/${victim.teamId}`, { token: attacker, body: { name: "Pwned" } }));
    expect((await server.request("GET", `/auth/teams/${victim.teamId}`, { token: victim.token })).body.name).toBe("Victim team");
  });

  test("DELETE /teams/:id of the victim's team -> 403/404, the team stays", async () => {
    refused(await server.request("DELETE", `/auth/teams/${victim.teamId}`, { token: attacker }));
    expect((await server.request("GET", `/auth/teams/${victim.teamId}`, { token: victim.token })).status).toBe(200);
  });

  test("GET /teams/:id/members of the victim's team -> 403/404", async () => {
    refused(await server.request("GET", `/auth/teams/${victim.teamId}/members`, { token: attacker }));
  });

  test("PATCH and DELETE /teams/:id/members/:userId of the victim's team -> 403/404, the members and roles are unchanged", async () => {
    for (const userId of [victim.id, victim.memberId]) {
      refused(await server.request("PATCH", `/auth/teams/${victim.teamId}/members/${userId}`, { token: attacker, body: { role: "member" } }));
      refused(await server.request("DELETE", `/auth/teams/${victim.teamId}/members/${userId}`, { token: attacker }));
    }
    const members = await server.request("GET", `/auth/teams/${victim.teamId}/members`, { token: victim.token });
    const roles = Object.fromEntries((members.body as Array<{ userId: string; role: string }>).map((m) => [m.userId, m.role]));
    expect(roles).toEqual({ [victim.id]: "owner", [victim.memberId]: "member" });
  });

  test("POST /teams/switch into the victim's team -> 403", async () => {
    const res = await server.request("POST", "/auth/teams/switch", { token: attacker, body: { teamId: victim.teamId } });
    expect(res.status).toBe(403);
  });

  test("GET /invitations?teamId= of the victim's team -> none of them (200 [])", async () => {
    const res = await server.request("GET", `/auth/invitations?teamId=${victim.teamId}`, { token: attacker });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    expect(res.text).not.toContain(victim.invitationId);
  });

  test("POST /invitations to the victim's team -> 403/404", async () => {
    refused(await server.request("POST", "/auth/invitations", { token: attacker, body: { email: uniqueEmail("x"), teamId: victim.teamId } }));
  });

  test("DELETE /invitations/:id of the victim's team -> 403/404, the invitation stays pending", async () => {
    refused(await server.request("DELETE", `/auth/invitations/${victim.invitationId}`, { token: attacker }));
    const [row] = await server.ctx.db.select().from(invitations).where(eq(invitations.id, victim.invitationId));
    expect(row?.revokedAt).toBeNull();
  });

  test("DELETE /accounts/:provider unlinks only the caller's own link: the victim's google link stays", async () => {
    refused(await server.request("DELETE", "/auth/accounts/google", { token: attacker }));
    const rows = await server.ctx.db.select().from(oauthAccounts).where(eq(oauthAccounts.userId, victim.id));
    expect(rows.map((r) => r.provider)).toEqual(["google"]);
  });

  test("a member (not admin) of the victim's team cannot remove the owner or rename the team", async () => {
    const memberToken = (await server.ctx.sessions.create((await server.ctx.users.findById(victim.memberId))!, { amr: ["pwd"], meta: { ip: null, userAgent: null } }))
      .accessToken;
    refused(await server.request("DELETE", `/auth/teams/${victim.teamId}/members/${victim.id}`, { token: memberToken }));
    refused(await server.request("PATCH", `/auth/teams/${victim.teamId}`, { token: memberToken, body: { name: "Pwned" } }));
    refused(await server.request("DELETE", `/auth/invitations/${victim.invitationId}`, { token: memberToken }));
  });
});
