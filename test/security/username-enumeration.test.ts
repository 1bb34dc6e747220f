import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestServer, type TestResponse, type TestServer, uniqueEmail } from "../support/server";

/**
 * Checklist: with REQUIRE_EMAIL_VERIFICATION=true, registering with a taken username must not tell whether the email
 * is registered. It answered 202 when the email had an account (the email's index failed first) and 409
 * USERNAME_TAKEN when it had none; now the username is judged first, so both answer 409 USERNAME_TAKEN, byte for byte.
 */
const PASSWORD = "plum-kettle-orbit-93";
let server: TestServer;
let knownEmail: string;
let takenUsername: string;

beforeAll(async () => {
  server = await createTestServer({ REQUIRE_EMAIL_VERIFICATION: true });
  knownEmail = uniqueEmail("known");
  takenUsername = `taken_${crypto.randomUUID().slice(0, 8)}`;
  await server.ctx.users.create({ email: knownEmail, emailVerified: true, passwordHash: await server.ctx.passwords.hash(PASSWORD) });
  await server.ctx.users.create({ email: uniqueEmail("holder"), emailVerified: true, username: takenUsername });
});
afterAll(async () => {
  await server.close();
});

const VARYING = new Set(["x-request-id", "date"]);
function shape(res: TestResponse) {
  const headers: string[] = [];
  res.headers.forEach((value, key) => {
    if (!VARYING.has(key)) headers.push(`${key}: ${value}`);
  });
  return { status: res.status, text: res.text, headers: headers.sort() };
}

const register = (email: string, username: string) => server.request("POST", "/auth/register", { body: { email, password: PASSWORD, username } });

describe("register with a taken username, REQUIRE_EMAIL_VERIFICATION=true", () => {
  test("a registered and an unregistered email get the same answer: 409 USERNAME_TAKEN", async () => {
    const known = await register(knownEmail, takenUsername);
    const unknown = await register(uniqueEmail("unknown"), takenUsername);
    expect(unknown.status).toBe(409);
    expect(unknown.body.code).toBe("USERNAME_TAKEN");
    expect(shape(known)).toEqual(shape(unknown));
  });

  test("the username is compared case-insensitively, and nothing is mailed to either address", async () => {
    const fresh = uniqueEmail("fresh");
    const sent = server.mailer.outbox.length;
    const known = await register(knownEmail, takenUsername.toUpperCase());
    const unknown = await register(fresh, takenUsername.toUpperCase());
    expect(shape(known)).toEqual(shape(unknown));
    await Bun.sleep(50);
    expect(server.mailer.outbox.slice(sent).filter((m) => m.to === knownEmail || m.to === fresh)).toEqual([]);
  });

  test("a free username keeps the no-enumeration answer for emails: 202 PENDING_CONFIRMATION for both", async () => {
    const known = await register(knownEmail, `free_${crypto.randomUUID().slice(0, 8)}`);
    const unknown = await register(uniqueEmail("unknown"), `free_${crypto.randomUUID().slice(0, 8)}`);
    expect(known.status).toBe(202);
    expect(shape(known)).toEqual(shape(unknown));
  });

  test("medians over 80 alternated samples of the two answers differ by under 10 ms", async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 80; i++) {
      // Which goes first alternates too, so a drift of the machine's load weighs on both alike.
      const pair = [[knownEmail, known], [uniqueEmail("t"), unknown]] as const;
      for (const [email, into] of i % 2 ? [...pair].reverse() : pair) {
        const started = performance.now();
        await register(email, takenUsername);
        into.push(performance.now() - started);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(10);
  });
});
