/**
 * Group commit for calls that each cost one statement: while fewer than `lanes` batches are in flight a call is sent at
 * once (alone it waits for nothing); while they are all busy, the calls that arrive gather and go as one batch when a
 * lane frees. Many requests in flight at once then cost one statement, one round trip and one commit between them,
 * and a quiet server answers as fast as without batching. A batch that fails rejects every call in it with the same
 * error, and, when `failsWaiting` says the error is the backend's (a timeout, a lost connection), the calls gathered
 * behind it too: they would meet the same backend, and must not wait for a second timeout.
 */
export class Batcher<In, Out> {
  private pending: Array<{ item: In; resolve(out: Out): void; reject(error: unknown): void }> = [];
  private inFlight = 0;

  constructor(
    /** Runs a batch: one answer per item, in the items' order. */
    private readonly run: (items: In[]) => Promise<Out[]>,
    /** How many batches may be in flight at once. */
    private readonly lanes = 1,
    /** The most calls one batch carries. */
    private readonly max = 128,
    /** Whether a batch's error also fails the calls waiting behind it. */
    private readonly failsWaiting: (error: unknown) => boolean = () => false,
  ) {}

  add(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.inFlight < this.lanes) this.flush();
    });
  }

  private flush(): void {
    const batch = this.pending.length > this.max ? this.pending.splice(0, this.max) : this.pending;
    if (batch === this.pending) this.pending = [];
    this.inFlight++;
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
          const failed = this.failsWaiting(error) ? batch.concat(this.pending.splice(0)) : batch;
          for (const call of failed) call.reject(error);
        },
      )
      .finally(() => {
        this.inFlight--;
        if (this.pending.length > 0) this.flush();
      });
  }
}
