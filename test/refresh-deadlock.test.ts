import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeJwt } from "jose";
import postgres from "postgres";
import { backend, createTestServer, type TestServer } from "./support/server";
import { createSignedInUser } from "./support/users";

/**
 * Refreshes in flight together rotate as one batched update, which locks several session rows; on Postgres another
 * transaction holding some of them can deadlock with it. Postgres then aborts the batch, and each refresh in it is
 * retried alone: nobody gets an error for a lock they did not take. (The embedded database has one connection, so
 * nothing there can deadlock.)
 */
describe.if(Boolean(backend.databaseUrl))("a batch of refreshes that deadlocks on Postgres", () => {
  let server: TestServer;
  let pg: postgres.Sql;

  beforeAll(async () => {
    server = await createTestServer({ AUTH_PLUGINS: "" });
    pg = postgres(backend.databaseUrl as string, { max: 4, onnotice: () => {} });
  });
  afterAll(async () => {
    await server.close();
    await pg.end();
  });

  const refresh = (refreshToken: string) => server.request("POST", "/auth/refresh", { body: { refreshToken } });
  const sidOf = (accessToken: string) => decodeJwt(accessToken).sid as string;
  /** Waits until a statement waits on a lock that the backend `pid` holds. */
  async function blockedBy(pid: number) {
    const deadline = Date.now() + 5000;
    for (;;) {
      const [row] = await pg`select count(*)::int as n from pg_stat_activity where ${pid} = any(pg_blocking_pids(pid))`;
      if (row!.n > 0) return;
      if (Date.now() > deadline) throw new Error(`nothing waits on backend ${pid}`);
      await Bun.sleep(10);
    }
  }
  const deadlocks = async () => Number((await pg`select deadlocks from pg_stat_database where datname = current_database()`)[0]!.deadlocks);

  test("the batch is retried one by one: every refresh succeeds, each successor works", async () => {
    const users = await Promise.all(Array.from({ length: 7 }, () => createSignedInUser(server)));
    // The batch is sorted by session id and locks in that order: the last one is the row the other side holds first.
    const bySid = users.map((u) => ({ token: u.tokens.refreshToken, sid: sidOf(u.tokens.accessToken) })).sort((a, b) => (a.sid < b.sid ? -1 : 1));
    const [blocker, ...batch] = bySid;
    const last = batch.at(-1)!;
    const before = await deadlocks();

    const first = await pg.reserve();
    const second = await pg.reserve();
    try {
      const [{ pid: firstPid }] = (await first`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      const [{ pid: secondPid }] = (await second`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      await first`begin`;
      await first`select id from sessions where id = ${blocker!.sid} for update`;
      await second`begin`;
      // This side never detects the deadlock (Postgres aborts the one that waited deadlock_timeout first).
      await second`set local deadlock_timeout = '30s'`;
      await second`select id from sessions where id = ${last.sid} for update`;

      // The first refresh goes alone and waits on `first`; the others gather behind it into one batch.
      const blocked = refresh(blocker!.token);
      await blockedBy(firstPid);
      const answers = Promise.all(batch.map((b) => refresh(b.token)));
      await Bun.sleep(50);
      await first`commit`;
      // The batch now holds every row but the last, and waits for it; `second` asks for the ones the batch holds.
      await blockedBy(secondPid);
      await second`update sessions set last_used_at = last_used_at where id in ${pg(batch.slice(0, -1).map((b) => b.sid))}`;
      await second`commit`;

      expect((await blocked).status).toBe(200);
      const results = await answers;
      expect(results.map((r) => r.status)).toEqual(Array(batch.length).fill(200));
      for (const [i, result] of results.entries()) expect(sidOf(result.body.accessToken)).toBe(batch[i]!.sid);
      const next = await Promise.all(results.map((r) => refresh(r.body.refreshToken)));
      expect(next.map((r) => r.status)).toEqual(Array(batch.length).fill(200));
    } finally {
      await first`rollback`.catch(() => {});
      await second`rollback`.catch(() => {});
      first.release();
      second.release();
    }
    // It did deadlock: the path under test is the retry, not a batch that happened to go through.
    const deadline = Date.now() + 5000;
    while ((await deadlocks()) <= before && Date.now() < deadline) await Bun.sleep(100);
    expect(await deadlocks()).toBeGreaterThan(before);
  });
});
