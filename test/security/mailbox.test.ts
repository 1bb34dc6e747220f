import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestServer, uniqueEmail } from "../support/server";
import { createSignedInUser } from "../support/users";

/**
 * Checklist: credentials follow their mailbox (issue 17, point 7). Whoever could read the old mailbox, or knew the old
 * password, keeps nothing after the owner moves on: reset links die on an email change and on a password change or
 * reset, other sessions end with an email change, and invitations die once their inviter may no longer make them.
 */
let server: TestServer;

beforeAll(async () => {
  server = await createTestServer();
});
afterAll(async () => {
  await server.close();
});

const PASSWORD = "mailbox-owner-phrase-1";

async function registered() {
  const email = uniqueEmail("mailbox");
  const res = await server.request("POST", "/auth/register", { body: { email, password: PASSWORD } });
  expect(res.status).toBe(201);
  return { email, token: res.body.accessToken as string, refreshToken: res.body.refreshToken as string };
}

async function resetLink(email: string): Promise<string> {
  const before = server.mailer.outbox.length;
  expect((await server.request("POST", "/auth/password/forgot", { body: { email } })).status).toBe(202);
  return /token=([\w-]+)/.exec((await server.mailTo(email, /token=/, before)).text)?.[1] ?? "";
}

const linkValid = async (token: string) => (await server.request("POST", "/auth/password/reset/validate", { body: { token } })).body.valid;

async function changeEmail(token: string, newEmail: string) {
  const before = server.mailer.outbox.length;
  expect((await server.request("POST", "/auth/email/change", { token, body: { newEmail, password: PASSWORD } })).status).toBe(202);
  const code = /\b(\d{6})\b/.exec((await server.mailTo(newEmail, /\b\d{6}\b/, before)).text)?.[1];
  return server.request("POST", "/auth/email/change/confirm", { token, body: { code } });
}

describe("reset links and sessions follow the mailbox", () => {
  test("an email change spends the reset link mailed to the old address and ends every other session; the current one lives", async () => {
    const owner = await registered();
    const link = await resetLink(owner.email);
    const other = await server.request("POST", "/auth/login", { body: { email: owner.email, password: PASSWORD } });
    expect(other.status).toBe(200);
    expect(await linkValid(link)).toBe(true);

    const changed = await changeEmail(owner.token, uniqueEmail("moved"));
    expect(changed.status).toBe(200);

    expect(await linkValid(link)).toBe(false);
    const reset = await server.request("POST", "/auth/password/reset", { body: { token: link, newPassword: "thief-chosen-phrase-9" } });
    expect(reset.status).toBe(400);
    expect((await server.request("GET", "/auth/me", { token: other.body.accessToken })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: other.body.refreshToken } })).status).toBe(401);
    expect((await server.request("POST", "/auth/refresh", { body: { refreshToken: owner.refreshToken } })).status).toBe(200);
  });

  test("a password change spends every outstanding reset link", async () => {
    const owner = await registered();
    const first = await resetLink(owner.email);
    const second = await resetLink(owner.email);
    const changed = await server.request("POST", "/auth/password/change", {
      token: owner.token,
      body: { currentPassword: PASSWORD, newPassword: "owner-next-phrase-22" },
    });
    expect(changed.status).toBe(204);
    for (const link of [first, second]) {
      expect(await linkValid(link)).toBe(false);
      expect((await server.request("POST", "/auth/password/reset", { body: { token: link, newPassword: "thief-chosen-phrase-9" } })).status).toBe(400);
    }
    expect((await server.request("POST", "/auth/login", { body: { email: owner.email, password: "owner-next-phrase-22" } })).status).toBe(200);
  });

  test("a password reset spends every other reset link", async () => {
    const owner = await registered();
    const older = await resetLink(owner.email);
    const used = await resetLink(owner.email);
    expect((await server.request("POST", "/auth/password/reset", { body: { token: used, newPassword: "owner-reset-phrase-5" } })).status).toBe(204);
    expect(await linkValid(older)).toBe(false);
  });
});

describe("invitations die when their inviter loses the right to make them", () => {
  /** An owner's team with a second member of `role`, who then invites `invitedRole`; answers the tokens and ids. */
  async function teamWithInviter(role: "admin" | "owner", invitedRole: "member" | "owner" = "member") {
    const owner = await createSignedInUser(server);
    const team = await server.request("POST", "/auth/teams", { token: owner.tokens.accessToken, body: { name: "Acme" } });
    expect(team.status).toBe(201);
    const inviter = await createSignedInUser(server);
    const join = await server.request("POST", "/auth/invitations", {
      token: owner.tokens.accessToken,
      body: { email: inviter.user.email, teamId: team.body.id, role },
    });
    expect(join.status).toBe(201);
    const before = server.mailer.outbox.length;
    const joinToken = /token=([\w%-]+)/.exec((await server.mailTo(inviter.user.email ?? "", /token=/)).text)?.[1];
    const accepted = await server.request("POST", "/auth/invitations/accept", { token: inviter.tokens.accessToken, body: { token: decodeURIComponent(joinToken ?? "") } });
    expect(accepted.status).toBe(200);
    const invitee = uniqueEmail("invitee");
    const sent = await server.request("POST", "/auth/invitations", { token: inviter.tokens.accessToken, body: { email: invitee, teamId: team.body.id, role: invitedRole } });
    expect(sent.status).toBe(201);
    const token = decodeURIComponent(/token=([\w%-]+)/.exec((await server.mailTo(invitee, /token=/, before)).text)?.[1] ?? "");
    expect((await server.request("POST", "/auth/invitations/validate", { body: { token } })).body.valid).toBe(true);
    return { owner, teamId: team.body.id as string, inviter, invitee, token };
  }

  const isValid = async (token: string) => (await server.request("POST", "/auth/invitations/validate", { body: { token } })).body.valid;
  const accept = (token: string) => server.request("POST", "/auth/invitations/accept", { body: { token, password: "invitee-own-phrase-3" } });

  test("the inviter leaves the team: their invitation is dead and cannot be accepted", async () => {
    const t = await teamWithInviter("admin");
    const left = await server.request("DELETE", `/auth/teams/${t.teamId}/members/${t.inviter.user.id}`, { token: t.inviter.tokens.accessToken });
    expect(left.status).toBe(204);
    expect(await isValid(t.token)).toBe(false);
    expect((await accept(t.token)).status).toBe(400);
  });

  test("the inviter is removed by an owner: their invitation is dead", async () => {
    const t = await teamWithInviter("admin");
    expect((await server.request("DELETE", `/auth/teams/${t.teamId}/members/${t.inviter.user.id}`, { token: t.owner.tokens.accessToken })).status).toBe(204);
    expect(await isValid(t.token)).toBe(false);
  });

  test("the inviter is demoted to member: their invitation is dead, and promoting them again does not revive it", async () => {
    const t = await teamWithInviter("admin");
    const demote = (role: string) =>
      server.request("PATCH", `/auth/teams/${t.teamId}/members/${t.inviter.user.id}`, { token: t.owner.tokens.accessToken, body: { role } });
    expect((await demote("member")).status).toBe(200);
    expect(await isValid(t.token)).toBe(false);
    expect((await demote("admin")).status).toBe(200);
    expect(await isValid(t.token)).toBe(false);
    expect((await accept(t.token)).status).toBe(400);
  });

  test("an owner demoted to admin loses the invitations that make owners (only owners may), and keeps the others", async () => {
    const ownerInvite = await teamWithInviter("owner", "owner");
    const memberInvite = await teamWithInviter("owner", "member");
    for (const t of [ownerInvite, memberInvite]) {
      const res = await server.request("PATCH", `/auth/teams/${t.teamId}/members/${t.inviter.user.id}`, { token: t.owner.tokens.accessToken, body: { role: "admin" } });
      expect(res.status).toBe(200);
    }
    expect(await isValid(ownerInvite.token)).toBe(false);
    expect(await isValid(memberInvite.token)).toBe(true);
  });

  test("the inviter deletes their account: their invitation is dead", async () => {
    const t = await teamWithInviter("admin");
    expect((await server.request("DELETE", "/auth/me", { token: t.inviter.tokens.accessToken })).status).toBe(204);
    expect(await isValid(t.token)).toBe(false);
    expect((await accept(t.token)).status).toBe(400);
  });

  test("an inviter who keeps the right keeps the invitation: promoting them leaves it alive", async () => {
    const t = await teamWithInviter("admin");
    const res = await server.request("PATCH", `/auth/teams/${t.teamId}/members/${t.inviter.user.id}`, { token: t.owner.tokens.accessToken, body: { role: "owner" } });
    expect(res.status).toBe(200);
    expect(await isValid(t.token)).toBe(true);
    expect((await accept(t.token)).status).toBe(200);
  });
});
