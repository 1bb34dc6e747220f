import { AsyncLocalStorage } from "node:async_hooks";
import type { PGlite } from "@electric-sql/pglite";

/**
 * A query on the root handle while a transaction of the same call chain is open. On PGlite (one connection) such a
 * query waits for the transaction, which waits for the query: the request would hang forever. It is a bug to fix
 * where it is thrown (pass the transaction's handle down), so it fails loudly, in tests and in production alike.
 */
export class RootQueryInTransactionError extends Error {
  constructor() {
    super("a query went to the root database handle while a transaction of the same request was open; pass the transaction's handle");
    this.name = "RootQueryInTransactionError";
  }
}

/** Waiting longer than the deadline for the embedded database: answered as 503 UNAVAILABLE ("timed out"). */
export class EmbeddedDatabaseTimeoutError extends Error {
  constructor(ms: number) {
    super(`the embedded database timed out: busy for more than ${ms} ms`);
    this.name = "EmbeddedDatabaseTimeoutError";
  }
}

type Waiter = { start(): void; timer: ReturnType<typeof setTimeout> };

/**
 * One turn at a time on PGlite's single connection, taken in order, with a deadline on the wait. Only the wait is
 * bounded: an operation that has its turn runs to its end (PGlite runs in process, nothing on it can go silent), so a
 * write never commits after its caller was told 503.
 */
class Turns {
  private busy = false;
  private readonly queue: Waiter[] = [];

  constructor(private readonly timeoutMs: number) {}

  async run<T>(operation: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await operation();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const at = this.queue.indexOf(waiter);
          if (at >= 0) this.queue.splice(at, 1);
          reject(new EmbeddedDatabaseTimeoutError(this.timeoutMs));
        }, this.timeoutMs),
      };
      this.queue.push(waiter);
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next.start();
    else this.busy = false;
  }
}

/**
 * Puts every root-handle query and transaction of `client` through one queue with a deadline, and refuses a
 * root-handle query issued from inside a transaction's own call chain (see RootQueryInTransactionError). drizzle's
 * PGlite driver calls `query` and `transaction` on the client; a transaction's handle runs its queries on PGlite's
 * private path, which this leaves alone.
 */
export function gatePglite(client: PGlite, timeoutMs: number): PGlite {
  const turns = new Turns(timeoutMs);
  const insideTransaction = new AsyncLocalStorage<true>();
  const query = client.query.bind(client);
  const exec = client.exec.bind(client);
  const transaction = client.transaction.bind(client);
  const guarded = <A extends unknown[], R>(operation: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      if (insideTransaction.getStore()) return Promise.reject(new RootQueryInTransactionError());
      return turns.run(() => operation(...args));
    };
  Object.assign(client, {
    query: guarded(query),
    exec: guarded(exec),
    transaction: guarded(<T>(callback: Parameters<PGlite["transaction"]>[0]) =>
      transaction((tx) => insideTransaction.run(true, () => callback(tx)) as Promise<T>),
    ),
  });
  return client;
}
