import { expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { sessions } from "../src/db/schema";
import { MemoryMailer } from "../src/mail";
import { type AuthServer, buildAuthServer } from "../src/server";
import { testDatabase, testStore, uniqueEmail } from "./support/server";

// Issue 18: with the in-memory store, a restart must not make every next sign-in send a "new sign-in" mail; a device
// the account has not used lately is still told, and so is one whose every session ended past retention.

const PASSWORD = "correct horse battery staple";
const OPTIONS = { PASSWORD_HASH_MEMORY_KIB: 4096, PASSWORD_HASH_TIME_COST: 1, LOG_LEVEL: "silent", RATE_LIMIT_LOGIN_IP: "10000/60", RATE_LIMIT_LOGIN_EMAIL: "10000/60" } as const;
const SUBJECT = "New sign-in to your account";

test("after a restart with an empty store, devices used lately stay known; a new one is still told", async () => {
  const database = await testDatabase();
  const email = uniqueEmail("devices");
  const post = (server: AuthServer, path: string, userAgent: string) =>
    server.app.handle(
      new Request(`http://localhost${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": userAgent },
        body: JSON.stringify({ email, password: PASSWORD }),
      }),
    );
  /** A server on the same database with a store that remembers nothing, as the in-memory one after a restart. */
  const boot = async () => {
    const kv = testStore();
    const mailer = new MemoryMailer();
    const server = await buildAuthServer(OPTIONS, { database, kv, mailer });
    const notices = async () => {
      await Bun.sleep(50);
      return mailer.outbox.filter((m) => m.to === email && m.subject === SUBJECT);
    };
    return { server, notices, close: () => server.close().then(() => kv.close()) };
  };
  try {
    const first = await boot();
    const registered = await post(first.server, "/auth/register", "Laptop/1");
    expect(registered.status).toBe(201);
    const userId = ((await registered.json()) as { user: { id: string } }).user.id;
    expect((await post(first.server, "/auth/login", "Phone/2")).status).toBe(200);
    expect(await first.notices()).toHaveLength(1);
    await first.close();

    const second = await boot();
    try {
      expect((await post(second.server, "/auth/login", "Laptop/1")).status).toBe(200);
      expect((await post(second.server, "/auth/login", "Phone/2")).status).toBe(200);
      expect(await second.notices()).toHaveLength(0);
      expect((await post(second.server, "/auth/login", "Tablet/3")).status).toBe(200);
      const notices = await second.notices();
      expect(notices).toHaveLength(1);
      expect(notices[0]?.text).toContain("Tablet/3");
    } finally {
      await second.close();
    }

    // Retention deleted every session (they ended long ago): the account has still signed in before, so the next
    // sign-in, from a device nothing remembers, is news, not a first sign-in.
    await database.db.delete(sessions).where(eq(sessions.userId, userId));
    const third = await boot();
    try {
      expect((await post(third.server, "/auth/login", "Laptop/1")).status).toBe(200);
      expect(await third.notices()).toHaveLength(1);
    } finally {
      await third.close();
    }
  } finally {
    await database.close();
  }
});
