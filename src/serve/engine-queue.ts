/**
 * The engine runs one call at a time: a forward pass is synchronous CPU work on this thread,
 * so two calls at once would only interleave. Requests wait in a bounded FIFO; a request whose
 * client went away before its turn is dropped without running. Between calls the event loop
 * gets a turn, so new requests are read, disconnects seen and finished answers written.
 */
import { setImmediate as turn } from "node:timers/promises";
import { ApiError } from "./errors.ts";

interface Job {
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
}

export class EngineQueue {
  readonly maxQueued: number;
  private readonly jobs: Job[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(maxQueued: number) {
    this.maxQueued = maxQueued;
  }

  /** Requests waiting plus the one running. */
  get size(): number {
    return this.jobs.length + (this.running ? 1 : 0);
  }

  /** Runs `fn` when the engine is free; 429 when the queue is full. */
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.jobs.length >= this.maxQueued)
      return Promise.reject(
        new ApiError(429, `The server has ${this.jobs.length} requests waiting; try again shortly.`, {
          type: "requests",
          code: "queue_full",
        }),
      );
    return new Promise<T>((resolve, reject) => {
      this.jobs.push({ run: fn, resolve: resolve as (v: unknown) => void, reject, signal });
      if (!this.running) void this.pump();
    });
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async pump(): Promise<void> {
    this.running = true;
    while (this.jobs.length > 0) {
      const job = this.jobs.shift()!;
      if (job.signal?.aborted) {
        job.reject(new ApiError(499, "client closed the request", { code: "client_closed" }));
        continue;
      }
      try {
        job.resolve(await job.run());
      } catch (e) {
        job.reject(e);
      }
      await turn();
    }
    this.running = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
