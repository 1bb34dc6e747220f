import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PGlite } from "@electric-sql/pglite";
import { eq, sql } from "drizzle-orm";
import { newId } from "../src/crypto";
import type { Database } from "../src/db";
import { openPglite, pgliteExtensions } from "../src/db/pglite";
import { EmbeddedDatabaseTimeoutError, RootQueryInTransactionError } from "../src/db/pglite-gate";
import { users } from "../src/db/schema";
import { MemoryStore } from "../src/kv";
import { createTestServer, type TestServer, uniqueEmail } from "./support/server";
import { createSignedInUser } from "./support/users";

/**
 * PGlite has one connection. A query on the root handle from inside a transaction of the same call chain would wait
 * for that transaction forever (issue 25); the gate refuses it at once, and bounds every other wait by the deadline.
 */
/** What a query failed with, under drizzle's wrapper (which keeps the driver's error as its cause). */
async function failureOf(query: PromiseLike<unknown>): Promise<unknown> {
  try {
    await query;
  } catch (error) {
    return (error as { cause?: unknown }).cause ?? error;
  }
  throw new Error("the query did not fail");
}

describe("the embedded database's gate", () => {
  let database: Database;

  beforeAll(async () => {
    database = openPglite(await PGlite.create({ extensions: pgliteExtensions }), 300);
    await database.migrate();
  }, 60_000);

  afterAll(() => database.close());

  test("a root-handle query inside a transaction fails at once and rolls the transaction back", async () => {
    const email = uniqueEmail("gate");
    const attempt = database.db.transaction(async (tx) => {
      await tx.insert(users).values({ id: newId(), email });
      await database.db.select().from(users).where(eq(users.email, email));
    });
    expect(await failureOf(attempt)).toBeInstanceOf(RootQueryInTransactionError);
    expect(await database.db.select().from(users).where(eq(users.email, email))).toHaveLength(0);
  });

  test("queries from other call chains wait their turn and run once the transaction ends", async () => {
    const email = uniqueEmail("gate");
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = database.db.transaction(async (tx) => {
      await tx.insert(users).values({ id: newId(), email });
      await held;
    });
    const waiting = database.db.select().from(users).where(eq(users.email, email));
    await Bun.sleep(50);
    release();
    await transaction;
    expect(await waiting).toHaveLength(1);
  });

  test("a query that cannot have the connection within the deadline is refused, and nothing of it runs later", async () => {
    const email = uniqueEmail("gate");
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = database.db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      await held;
    });
    const started = performance.now();
    expect(await failureOf(database.db.insert(users).values({ id: newId(), email }))).toBeInstanceOf(EmbeddedDatabaseTimeoutError);
    expect(performance.now() - started).toBeLessThan(2000);
    release();
    await transaction;
    await Bun.sleep(20);
    expect(await database.db.select().from(users).where(eq(users.email, email))).toHaveLength(0);
  });
});

describe("a request that waits on the embedded database longer than BACKEND_TIMEOUT_MS", () => {
  let server: TestServer;
  let database: Database;

  beforeAll(async () => {
    database = openPglite(await PGlite.create({ extensions: pgliteExtensions }), 400);
    await database.migrate();
    server = await createTestServer({ BACKEND_TIMEOUT_MS: 400 }, { database, kv: new MemoryStore() });
  }, 60_000);

  afterAll(() => server.close());

  test("answers 503 UNAVAILABLE in time instead of hanging, and the server works again once the database is free", async () => {
    const { accessToken } = (await createSignedInUser(server)).tokens;
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const busy = database.db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      await held;
    });
    const started = performance.now();
    const refused = await server.request("GET", "/auth/me", { token: accessToken });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe("UNAVAILABLE");
    expect(performance.now() - started).toBeLessThan(3000);
    release();
    await busy;
    const again = await server.request("GET", "/auth/me", { token: accessToken });
    expect(again.status).toBe(200);
  });
});
