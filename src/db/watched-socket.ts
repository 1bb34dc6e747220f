import { connect, type Socket } from "node:net";

/** What postgres-js hands its `socket` option: the parsed hosts, ports and unix socket path. */
type SocketOptions = { host: string[]; port: number[]; path?: string | false };

const SSL_REQUEST_CODE = 80877103;
const READY_FOR_QUERY = 0x5a; // 'Z'
const SYNC = 0x53; // 'S'
const SIMPLE_QUERY = 0x51; // 'Q'
const FLUSH = 0x48; // 'H'

/**
 * Counts, from the bytes that pass, how many answers a Postgres connection still waits for: each Sync or simple Query
 * the client sends is answered by one ReadyForQuery, and a Flush (postgres-js sends Parse, Describe, Flush to learn a
 * new statement's parameter types before it binds) by whatever comes after the answers due before it. Frames are a
 * type byte and a 4-byte length; only the first message of a connection (startup, or an SSL request) has no type
 * byte. Exported for its test.
 */
export class FrameCounter {
  /** A header split across chunks, gathered here; a header whole in its chunk is read in place. */
  private readonly header = new Uint8Array(8);
  private have = 0;
  private skip = 0;

  constructor(private typed: boolean) {}

  /** Feeds bytes; calls `onFrame` with each frame's type byte (0 for the untyped first message). */
  feed(chunk: Uint8Array, onFrame: (type: number, firstWord: number) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const want = this.typed ? 5 : 8;
      let bytes: Uint8Array = chunk;
      let base = at;
      if (this.have === 0 && chunk.length - at >= want) {
        at += want;
      } else {
        while (this.have < want && at < chunk.length) this.header[this.have++] = chunk[at++] as number;
        if (this.have < want) return;
        bytes = this.header;
        base = 0;
        this.have = 0;
      }
      const type = this.typed ? (bytes[base] as number) : 0;
      const length = this.typed ? word32(bytes, base + 1) : word32(bytes, base);
      const word = this.typed ? 0 : word32(bytes, base + 4);
      this.skip = Math.max(0, length - (this.typed ? 4 : 8));
      // Only the very first outgoing message is untyped; everything after it has a type byte.
      this.typed = true;
      onFrame(type, word);
    }
  }
}

/** A big-endian unsigned 32-bit word at `at`. */
const word32 = (bytes: Uint8Array, at: number) =>
  (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0;

/**
 * A socket for postgres-js that is dropped when the server stops answering: once the client has sent a query, the
 * connection must show progress (a byte back) every `timeoutMs`, or it is destroyed. postgres-js then fails the
 * queries on it (503 UNAVAILABLE) and makes a new connection for the next ones, so a network that went silent (open
 * connections, nothing passing: TCP sees no error for minutes) costs one deadline, not a pool stuck forever.
 * Connecting is bounded by postgres-js's own connect_timeout; TCP keepalive catches a peer that vanished while idle.
 */
export function watchedSocketFactory(timeoutMs: number) {
  return async (options: SocketOptions): Promise<Socket> => {
    let lastError: unknown;
    const targets = options.path ? [{ path: options.path }] : options.host.map((host, i) => ({ host, port: options.port[i] ?? 5432 }));
    for (const target of targets) {
      try {
        const socket = await open(target, timeoutMs);
        watch(socket, timeoutMs);
        return socket;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };
}

function open(target: { path: string } | { host: string; port: number }, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in target ? connect(target.path) : connect(target.port, target.host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error("connect timed out"), { code: "CONNECT_TIMEOUT" }));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.setKeepAlive(true, timeoutMs);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    if ("host" in target) Object.assign(socket, { host: target.host, port: target.port });
  });
}

function watch(socket: Socket, timeoutMs: number): void {
  const outgoing = new FrameCounter(false);
  const incoming = new FrameCounter(true);
  /** Answers still due; null once the stream is encrypted (TLS), where frames cannot be read. */
  let awaited: number | null = 0;
  let started = false;
  const openedAt = performance.now();
  /** While something is due: the connection must show progress every timeoutMs, counted from `progressAt`. */
  let watching = false;
  let progressAt = 0;
  // One timer per deadline, not one per chunk: progress only moves `progressAt`, and the timer, when it fires early,
  // waits out the rest.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    timer = undefined;
    if (!watching) return;
    const quiet = performance.now() - progressAt;
    if (quiet >= timeoutMs) socket.destroy();
    else timer = setTimeout(check, timeoutMs - quiet);
  };
  const disarm = () => {
    watching = false;
  };
  // Armed (again) on progress while something is due. The start-up exchange is left to connect_timeout, which fails
  // the waiting query; dropping the socket then would only make postgres-js reconnect for it.
  const arm = () => {
    const now = performance.now();
    // Encrypted, the end of start-up cannot be seen: by connect_timeout's end it is over, one way or the other.
    watching = started || (awaited === null && now - openedAt > timeoutMs);
    if (!watching) return;
    progressAt = now;
    timer ??= setTimeout(check, timeoutMs);
  };
  /**
   * A Flush sent and not answered yet: the answers due before it still to come (its own is the next frame after them).
   * One is enough: postgres-js sends nothing more on a connection until a statement it describes first is answered.
   */
  let flushAfter: number | null = null;
  const sent = (type: number, word: number) => {
    if (type === 0) {
      if (word === SSL_REQUEST_CODE) awaited = null;
      else if (awaited !== null) awaited += 1;
    } else if ((type === SYNC || type === SIMPLE_QUERY) && awaited !== null) {
      awaited += 1;
      if (!watching) arm();
    } else if (type === FLUSH && awaited !== null && flushAfter === null) {
      flushAfter = awaited;
      if (!watching) arm();
    }
  };
  const received = (type: number) => {
    if (flushAfter !== null) {
      if (flushAfter === 0) flushAfter = null;
      else if (type === READY_FOR_QUERY) flushAfter -= 1;
    }
    if (type === READY_FOR_QUERY && awaited !== null) {
      awaited = Math.max(0, awaited - 1);
      started = true;
    }
  };

  const write = socket.write.bind(socket) as (chunk: Uint8Array, ...rest: unknown[]) => boolean;
  socket.write = ((chunk: Uint8Array | string, ...rest: unknown[]) => {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (awaited === null) {
      // Encrypted: a write after the last read is taken as a question still unanswered.
      if (!watching) arm();
    } else {
      outgoing.feed(bytes, sent);
    }
    return write(bytes, ...rest);
  }) as typeof socket.write;

  socket.on("data", (chunk: Buffer) => {
    if (awaited === null) {
      disarm();
      return;
    }
    incoming.feed(chunk, received);
    if (awaited !== null && (awaited > 0 || flushAfter !== null)) arm();
    else disarm();
  });
  socket.once("close", () => {
    disarm();
    clearTimeout(timer);
  });
}
