import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { type Database, type Db, migrationsFolder, schema } from "./index";
import { watchedSocketFactory } from "./watched-socket";

/** Arbitrary but fixed: every instance of this server takes the same lock before migrating. */
const MIGRATION_LOCK_ID = 7_202_611;

export function openPostgres(url: string, timeoutMs: number): Database {
  // Every call is bounded by timeoutMs on our side too: the server's statement_timeout cannot help when the network
  // goes silent, so a connection that shows no progress for that long is dropped (src/db/watched-socket.ts).
  // `socket` is a documented postgres-js option its type declarations lack.
  const client = postgres(url, {
    max: 10,
    connect_timeout: timeoutMs / 1000,
    idle_timeout: 30,
    keep_alive: Math.max(1, Math.round(timeoutMs / 1000)),
    onnotice: () => {},
    connection: { statement_timeout: timeoutMs },
    ...({ socket: watchedSocketFactory(timeoutMs) } as object),
  });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "postgres",
    async migrate() {
      // A session-level lock needs one connection for lock, migration and unlock; drizzle cannot run on a reserved
      // connection (no `options`, no `begin`), so a one-connection client of its own does it.
      const single = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)) });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
        await migratePostgres(drizzlePostgres(single, { schema }), { migrationsFolder });
      } finally {
        await single`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`.catch(() => {});
        await single.end({ timeout: 5 });
      }
    },
    async ping() {
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

