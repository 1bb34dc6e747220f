/**
 * Group commit for calls that each cost one statement: a call that finds no batch in flight is sent at once (alone, it
 * waits for nothing); the calls that arrive while one is in flight gather, and go as the next batch when it is
 * answered. Many requests in flight at once then cost one statement, one round trip and one commit between them, and
 * a quiet server answers as fast as without batching. (One batch at a time measured faster than two to eight: see
 * bench/analysis.md, 2026-12-04.) A batch that fails rejects every call in it with the same error, and, when
 * `failsWaiting` says the error is the backend's (a timeout, a lost connection), the calls gathered behind it too:
 * they would meet the same backend, and must not wait for a second timeout.
 */
/** The most calls one batch carries. */
const MAX_BATCH = 128;

export class Batcher<In, Out> {
  private pending: Array<{ item: In; resolve(out: Out): void; reject(error: unknown): void }> = [];
  private busy = false;

  constructor(
    /** Runs a batch: one answer per item, in the items' order. */
    private readonly run: (items: In[]) => Promise<Out[]>,
    private readonly options: {
      /** Whether a batch's error also fails the calls waiting behind it. */
      failsWaiting?: (error: unknown) => boolean;
    } = {},
  ) {}

  add(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.busy) this.flush();
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0, MAX_BATCH);
    this.busy = true;
    let answers: Promise<Out[]>;
    try {
      answers = this.run(batch.map((call) => call.item));
    } catch (error) {
      answers = Promise.reject(error);
    }
    answers
      .then(
        (outs) => {
          for (const [i, call] of batch.entries()) call.resolve(outs[i] as Out);
        },
        (error: unknown) => {
          const failed = this.options.failsWaiting?.(error) ? batch.concat(this.pending.splice(0)) : batch;
          for (const call of failed) call.reject(error);
        },
      )
      .finally(() => {
        this.busy = false;
        if (this.pending.length > 0) this.flush();
      });
  }
}
