import { expect, test } from "bun:test";
import { MemoryMailer } from "../src/mail";
import { buildAuthServer } from "../src/server";
import { testDatabase, testStore, uniqueEmail } from "./support/server";

// Issue 18: with the in-memory store, a restart must not make every next sign-in send a "new sign-in" mail.

const PASSWORD = "correct horse battery staple";
const OPTIONS = { PASSWORD_HASH_MEMORY_KIB: 4096, PASSWORD_HASH_TIME_COST: 1, LOG_LEVEL: "silent", RATE_LIMIT_LOGIN_IP: "10000/60", RATE_LIMIT_LOGIN_EMAIL: "10000/60" } as const;

test("after a restart with an empty store, known devices stay known; a new one is still told", async () => {
  const database = await testDatabase();
  const email = uniqueEmail("devices");
  const post = (server: Awaited<ReturnType<typeof buildAuthServer>>, path: string, userAgent: string) =>
    server.app.handle(
      new Request(`http://localhost${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": userAgent },
        body: JSON.stringify({ email, password: PASSWORD }),
      }),
    );
  try {
    const firstMail = new MemoryMailer();
    const first = await buildAuthServer(OPTIONS, { database, kv: testStore(), mailer: firstMail });
    expect((await post(first, "/auth/register", "Laptop/1")).status).toBe(201);
    expect((await post(first, "/auth/login", "Phone/2")).status).toBe(200);
    await Bun.sleep(100);
    expect(firstMail.outbox.filter((m) => m.subject === "New sign-in to your account")).toHaveLength(1);
    await first.close();

    // The restart: same database, a store that remembers nothing.
    const store = testStore();
    const mail = new MemoryMailer();
    const second = await buildAuthServer(OPTIONS, { database, kv: store, mailer: mail });
    try {
      expect((await post(second, "/auth/login", "Laptop/1")).status).toBe(200);
      expect((await post(second, "/auth/login", "Phone/2")).status).toBe(200);
      await Bun.sleep(100);
      expect(mail.outbox.filter((m) => m.subject === "New sign-in to your account")).toHaveLength(0);
      expect((await post(second, "/auth/login", "Tablet/3")).status).toBe(200);
      await Bun.sleep(100);
      const notices = mail.outbox.filter((m) => m.subject === "New sign-in to your account");
      expect(notices).toHaveLength(1);
      expect(notices[0]?.text).toContain("Tablet/3");
    } finally {
      await second.close();
      await store.close();
    }
  } finally {
    await database.close();
  }
});
