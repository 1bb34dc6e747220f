import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { connect, type Socket } from "node:net";
import { FrameCounter, watchedSocketFactory } from "../src/db/watched-socket";
import { CuttableProxy } from "./support/proxy";

// The socket under every Postgres connection counts, from the bytes that pass, the answers still due, and drops a
// connection that shows no progress while one is (issue 18). Counted wrong, it would drop idle connections (too
// many due) or keep silent ones (too few): both are checked here, with frames split across chunks and pipelined.

const DATABASE_URL = process.env.DATABASE_URL;
const TIMEOUT_MS = 400;

describe.if(Boolean(DATABASE_URL))("the watched Postgres socket", () => {
  // Made in beforeAll: Bun runs a describe's body even when `.if` skips its tests, and there is no URL then.
  let proxy: CuttableProxy;
  let sql: ReturnType<typeof postgres>;

  beforeAll(() => {
    const target = new URL(DATABASE_URL as string);
    proxy = new CuttableProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(DATABASE_URL as string);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.start());
    sql = postgres(viaProxy.toString(), { max: 1, onnotice: () => {}, connect_timeout: 2, ...({ socket: watchedSocketFactory(TIMEOUT_MS) } as object) });
  });

  afterAll(async () => {
    await sql.end({ timeout: 1 });
    proxy.stop();
  });

  test("after large answers and pipelined queries, an idle connection is kept; a silent one is dropped in time", async () => {
    const [{ pid }] = await sql`select pg_backend_pid() as pid`;
    // Answers of ~2 MB arrive in many chunks, frames split at arbitrary bytes; 200 queries go out pipelined.
    const rows = await sql`select repeat(md5(g::text), 8) as text from generate_series(1, 8000) as g`;
    expect(rows).toHaveLength(8000);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => sql`select ${i}::int as i`));
    expect(answers.map(([row]) => row?.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // Idle for three deadlines: nothing is due, so the connection lives on (the same backend answers).
    await Bun.sleep(TIMEOUT_MS * 3);
    const [{ pid: again }] = await sql`select pg_backend_pid() as pid`;
    expect(again).toBe(pid);

    // Silent while a query is due: dropped after about one deadline, and the next query gets a new connection.
    proxy.silence();
    const startedAt = performance.now();
    const error = await sql`select 1`.then(() => undefined, (e: unknown) => e);
    const waited = performance.now() - startedAt;
    expect(error).toBeInstanceOf(Error);
    expect(waited).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(waited).toBeLessThan(TIMEOUT_MS * 4);
    proxy.restore();
    const [{ pid: fresh }] = await sql`select pg_backend_pid() as pid`;
    expect(fresh).not.toBe(pid);
  });

  test("silent while a new statement is described (Parse, Describe, Flush: no Sync yet), dropped in time too", async () => {
    const [{ pid }] = await sql`select pg_backend_pid() as pid`;
    proxy.silence();
    const startedAt = performance.now();
    // A text never sent before, with a parameter: postgres-js asks for its parameter types before it binds.
    const error = await sql`select ${crypto.randomUUID()}::text as described`.then(() => undefined, (e: unknown) => e);
    const waited = performance.now() - startedAt;
    proxy.restore();
    expect(error).toBeInstanceOf(Error);
    expect(waited).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(waited).toBeLessThan(TIMEOUT_MS * 4);
    const [{ pid: fresh, n }] = await sql`select pg_backend_pid() as pid, ${2}::int + 1 as n`;
    expect(fresh).not.toBe(pid);
    expect(n).toBe(3);
  });

  test("frames are counted alike however the bytes are cut: a real exchange fed in pieces of 1 to 7 bytes", async () => {
    // Records what a real connection sends and receives, then feeds it back in every cut.
    const sent: Buffer[] = [];
    const received: Buffer[] = [];
    const target = new URL(DATABASE_URL as string);
    const recording = postgres(DATABASE_URL as string, {
      max: 1,
      onnotice: () => {},
      ...({
        socket: () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(target.port || 5432), target.hostname);
            const write = socket.write.bind(socket) as (chunk: Uint8Array, ...rest: unknown[]) => boolean;
            socket.write = ((chunk: Uint8Array | string, ...rest: unknown[]) => {
              sent.push(Buffer.from(chunk));
              return write(chunk as Uint8Array, ...rest);
            }) as typeof socket.write;
            socket.on("data", (chunk: Buffer) => received.push(Buffer.from(chunk)));
            socket.once("connect", () => resolve(socket));
            socket.once("error", reject);
          }),
      } as object),
    });
    await recording`select repeat(md5(g::text), 4) as text from generate_series(1, 500) as g`;
    await Promise.all(Array.from({ length: 20 }, (_, i) => recording`select ${i}::int as i`));
    await recording`select 1`.simple();
    await recording.end({ timeout: 1 });

    const count = (stream: Buffer, typed: boolean, piece: number, wanted: (type: number) => boolean) => {
      const counter = new FrameCounter(typed);
      let n = 0;
      for (let at = 0; at < stream.length; at += piece) counter.feed(stream.subarray(at, at + piece), (type) => void (wanted(type) && n++));
      return n;
    };
    const out = Buffer.concat(sent);
    const back = Buffer.concat(received);
    const questions = count(out, false, out.length, (type) => type === 0x53 || type === 0x51);
    const answers = count(back, true, back.length, (type) => type === 0x5a);
    // The start-up's own ReadyForQuery answers the untyped start-up message; then one per Sync or Query.
    expect(questions).toBeGreaterThanOrEqual(22);
    expect(answers).toBe(questions + 1);
    for (let piece = 1; piece <= 7; piece++) {
      expect(count(out, false, piece, (type) => type === 0x53 || type === 0x51)).toBe(questions);
      expect(count(back, true, piece, (type) => type === 0x5a)).toBe(answers);
    }
  });
});
