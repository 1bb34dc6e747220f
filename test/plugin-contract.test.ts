import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { and, eq } from "drizzle-orm";
import { ConfigError, loadConfig } from "../src/config";
import { auditEvents } from "../src/db/schema";
import { PLUGINS } from "../src/plugins";
import { buildAuthServer } from "../src/server";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";

// Issue 16: one plugin contract. The core names no plugin; a plugin needs another only through its declared API;
// every sign-in path, invitations included, ends in the one startSession.

const filesUnder = async (dir: string) => {
  const files: Array<{ path: string; text: string }> = [];
  // Scanned from the folder itself: a scan from the root walks every folder there, and one a test removes meanwhile fails it.
  for await (const relative of new Glob("**/*.{ts,tsx}").scan({ cwd: dir })) {
    const path = `${dir}/${relative}`;
    files.push({ path, text: await Bun.file(path).text() });
  }
  return files;
};
const importsOf = (text: string) => [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1] as string);

describe("the contract", () => {
  test("nothing in src/ imports from plugins/ but the composition root, src/plugins.ts", async () => {
    const offenders = (await filesUnder("src"))
      .filter((f) => f.path !== "src/plugins.ts" && importsOf(f.text).some((spec) => spec.includes("/plugins/")))
      .map((f) => f.path);
    expect(offenders).toEqual([]);
  });

  test("each plugin is one definePlugin per folder, named for its folder, and lists only plugins it depends on", async () => {
    const folders: string[] = [];
    for await (const path of new Glob("*/index.ts").scan({ cwd: "plugins" })) folders.push(path.split("/")[0] as string);
    expect(PLUGINS.map((p): string => p.id).sort()).toEqual(folders.sort());
    const ids = new Set<string>(PLUGINS.map((p) => p.id));
    for (const plugin of PLUGINS) for (const dep of ("dependsOn" in plugin ? plugin.dependsOn : []) ?? []) expect(ids.has(dep)).toBe(true);
  });

  test("a plugin reaches another only through its public API (api.ts), and only one it names in dependsOn or uses", async () => {
    const ids = new Set<string>(PLUGINS.map((p) => p.id));
    const reached: string[] = [];
    for (const plugin of PLUGINS) {
      const declared = new Set<string>([...(("dependsOn" in plugin && plugin.dependsOn) || []), ...(("uses" in plugin && plugin.uses) || [])]);
      for (const file of await filesUnder(`plugins/${plugin.id}`)) {
        for (const spec of importsOf(file.text)) {
          const other = /^\.\.\/([a-z-]+)\//.exec(spec)?.[1];
          if (!other || other === plugin.id || !ids.has(other)) continue;
          reached.push(`${plugin.id} -> ${spec}`);
          expect(`${file.path}: ${spec}`).toBe(`${file.path}: ../${other}/api`);
          expect(declared.has(other)).toBe(true);
        }
      }
    }
    // The check above has something to check: invitations needs teams, admin works with four plugins.
    expect(reached).toContain("invitations -> ../teams/api");
    expect(reached).toContain("admin -> ../mfa/api");
  });

  test("invitations without teams is a start error naming AUTH_PLUGINS", async () => {
    let caught: unknown;
    try {
      loadConfig({ AUTH_PLUGINS: "password,invitations" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe("AUTH_PLUGINS");
    expect((caught as Error).message).toBe('Invalid setting AUTH_PLUGINS: plugin "invitations" needs plugin "teams"');
    // The settings are checked before anything is opened.
    await expect(buildAuthServer({ AUTH_PLUGINS: "invitations" })).rejects.toThrow('plugin "invitations" needs plugin "teams"');
    expect([...loadConfig({ AUTH_PLUGINS: "teams,invitations" }).plugins]).toEqual(["teams", "invitations"]);
  });

  test("a plugin's setting is checked at start with the core's: a wrong one names its variable", () => {
    for (const [variable, value] of [["INVITATION_PATH", "accept"], ["ANONYMOUS_TTL_DAYS", "-3"], ["RATE_LIMIT_ANONYMOUS_IP", "many"], ["DEMO_MODE", "maybe"]]) {
      expect(() => loadConfig({ [variable as string]: value })).toThrow(`Invalid setting ${variable}:`);
    }
  });
});

describe("accepting an invitation ends in the one startSession (a new account) or in none (signed in)", () => {
  let server: TestServer;
  const ADMIN_EMAIL = uniqueEmail("global-admin");
  let adminToken: string;

  beforeAll(async () => {
    server = await createTestServer({ AUTH_PLUGINS: "teams,invitations", ADMIN_EMAILS: ADMIN_EMAIL });
    const admin = await server.ctx.users.create({ email: ADMIN_EMAIL, emailVerified: true });
    adminToken = (await server.ctx.sessions.create(admin, { amr: ["pwd"], meta: { ip: null, userAgent: null } })).accessToken;
  });
  afterAll(() => server.close());

  async function invite(email: string) {
    const after = server.mailer.outbox.length;
    expect((await server.request("POST", "/auth/invitations", { body: { email }, token: adminToken })).status).toBe(201);
    const mail = await server.mailTo(email, /token=/, after);
    return /token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1] as string;
  }

  const signInRows = (userId: string) =>
    server.ctx.db.select().from(auditEvents).where(and(eq(auditEvents.userId, userId), eq(auditEvents.type, "sign_in")));

  test("a new account: the session's sign_in audit row names the invitation", async () => {
    const email = uniqueEmail("invitee");
    const token = await invite(email);
    const res = await server.request("POST", "/auth/invitations/accept", {
      body: { token, password: "correct horse battery" },
      headers: { "user-agent": "invitee-browser" },
    });
    expect(res.status).toBe(200);
    const rows = await signInRows(res.body.user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.data).toEqual({ method: "invitation" });
    expect(rows[0]?.userAgent).toBe("invitee-browser");
  });

  test("a signed-in user is not signed in again: no sign_in row, no new-device mail, the caller's session gets the pair", async () => {
    const email = uniqueEmail("member");
    const user = await server.ctx.users.create({ email, emailVerified: true });
    const own = await server.ctx.sessions.create(user, { amr: ["pwd"], meta: { ip: null, userAgent: "usual-laptop" } });
    const token = await invite(email);
    const after = server.mailer.outbox.length;
    const res = await server.request("POST", "/auth/invitations/accept", {
      body: { token },
      token: own.accessToken,
      headers: { "user-agent": "a-new-phone" },
    });
    expect(res.status).toBe(200);
    expect(await signInRows(user.id)).toEqual([]);
    const claims = JSON.parse(Buffer.from(res.body.accessToken.split(".")[1], "base64url").toString("utf8"));
    expect(claims.sid).toBe(JSON.parse(Buffer.from(own.accessToken.split(".")[1] ?? "", "base64url").toString("utf8")).sid);
    await Bun.sleep(50);
    expect(server.mailer.outbox.slice(after).filter((m) => m.to === email)).toEqual([]);
  });
});
