/** Rate limits for one endpoint (provider + base URL + key variable). */

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

export { sleep };

/**
 * Token bucket refilled continuously at `perMinute`. It holds at most ten seconds' worth, so a
 * run starts briskly without bursting a whole minute's quota into the provider's window.
 * A single take larger than the bucket waits for a full bucket and then drives it negative.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly capacity: number;
  private readonly perMs: number;
  private chain: Promise<void> = Promise.resolve();

  constructor(perMinute: number) {
    this.perMs = perMinute / 60_000;
    this.capacity = Math.max(1, perMinute / 6);
    this.tokens = this.capacity;
  }

  private refill(): void {
    const t = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + (t - this.last) * this.perMs);
    this.last = t;
  }

  /** Waits until `amount` can be taken; takers are served in order. */
  take(amount: number, signal?: AbortSignal): Promise<void> {
    const run = this.chain.then(async () => {
      for (;;) {
        if (signal?.aborted) return;
        this.refill();
        const need = Math.min(amount, this.capacity);
        if (this.tokens >= need) {
          this.tokens -= amount;
          return;
        }
        await sleep((need - this.tokens) / this.perMs, signal);
      }
    });
    this.chain = run;
    return run;
  }

  /** Corrects an estimate once the real usage is known (may be negative: a refund). */
  adjust(delta: number): void {
    this.refill();
    this.tokens = Math.min(this.capacity, this.tokens - delta);
  }
}
