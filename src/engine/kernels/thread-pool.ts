import { Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./wasm-api.ts";

/**
 * Worker threads that help run one WASM kernel call (gemm on row ranges, gemv on column
 * ranges) over the kernels' shared memory.
 *
 * The matmul API is synchronous, so there is no postMessage per call: a job goes through
 * a SharedArrayBuffer control block. The range is cut into chunks that every thread,
 * the caller's included, claims one at a time until none are left; the caller then
 * Atomics.waits for the chunks still running. Claiming (rather than a fixed split) keeps
 * a busy machine from stalling the caller on a worker the OS has not scheduled: the
 * caller simply does the unclaimed chunks itself. Workers are unref'd, so an idle pool
 * never keeps the process alive.
 *
 * Control block (Int32), mirrored in matmul-worker.mjs:
 *   [0] GENERATION  bumped per job; workers sleep on it
 *   [1] NEXT        (generation & 0xffff) << 16 | next unclaimed chunk; workers claim by
 *                   compare-and-swap so a stale worker never consumes a newer job's chunk
 *   [2] DONE        chunks finished
 *   [3] FAILED      a worker's kernel threw
 *   [4] export (0 gemm, 1 gemv, 2 gemmCols, 3 gemvRows, 4 gemv8Range, 5 gemmNT, 6 JS swiglu)  [5] (generation & 0xffff) << 16 | chunk count
 *   [6] chunk size  [7] range end
 *   [8] index of the range start argument (the end is the next one)
 *   [9] index of the scratch argument, or -1
 *   [10..22] the kernel arguments (13 slots)  [23] how many  [24 + w] worker w ready
 */

const GENERATION = 0;
const NEXT = 1;
const DONE = 2;
const FAILED = 3;
const EXPORT = 4;
const CHUNKS = 5;
const CHUNK_SIZE = 6;
const RANGE_END = 7;
const RANGE_ARG = 8;
const SCRATCH_ARG = 9;
const ARGS = 10;
const MAX_ARGS = 13;
const ARGS_COUNT = 23;
const READY = 24;

/** Which export of matmul.wat a job calls. */
export const GEMM = 0;
export const GEMV = 1;
export const GEMM_COLS = 2;
export const GEMV_ROWS = 3;
export const GEMV8 = 4;
export const GEMM_NT = 5;
/** Not a WASM export: the JS SwiGLU loop in matmul-worker.mjs (and wasm-matmul.ts). */
export const SWIGLU = 6;

export interface PoolJob {
  kernel:
    | typeof GEMM
    | typeof GEMV
    | typeof GEMM_COLS
    | typeof GEMV_ROWS
    | typeof GEMV8
    | typeof GEMM_NT
    | typeof SWIGLU;
  /** The kernel arguments (at most 13), in matmul.wat's parameter order. */
  args: number[];
  /** args[rangeArg] and args[rangeArg + 1] are replaced by each chunk's [start, end). */
  rangeArg: number;
  /** args[scratchArg] is replaced by the running thread's scratch area; -1 for none. */
  scratchArg: number;
  rangeEnd: number;
  chunkSize: number;
}

export class MatmulThreadPool {
  private readonly ctl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly started: Promise<void>;
  private dead = 0;

  /**
   * `scratch(t)` is thread t's scratch address: t = 0 for the caller, w + 1 for worker w.
   */
  constructor(
    module: WasmModule,
    memory: WasmMemory,
    count: number,
    private readonly scratch: (thread: number) => number,
    /** How long the caller waits on a running chunk without progress before it throws. */
    private readonly stallMs = 60_000,
    /** Test hook: workers sleep this long after each chunk (see matmul-worker.mjs). */
    pauseAfterChunkMs = 0,
  ) {
    this.ctl = new Int32Array(new SharedArrayBuffer((READY + count) * 4));
    const url = new URL("./matmul-worker.mjs", import.meta.url);
    const startups: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      // execArgv []: the worker is plain JS and must not inherit loader or --eval flags.
      const worker = new Worker(url, {
        workerData: {
          module,
          memory,
          control: this.ctl.buffer,
          index,
          scratch: scratch(index + 1),
          pauseAfterChunkMs,
        },
        execArgv: [],
      });
      worker.unref();
      startups.push(
        new Promise<void>((done) => {
          worker.once("message", () => done());
          // A worker that cannot start never sets its ready flag, so it is simply never used.
          worker.once("error", (err) => {
            this.dead++;
            process.stderr.write(`emlab: matmul worker ${index} failed to start: ${err.message}\n`);
            done();
          });
        }),
      );
      this.workers.push(worker);
    }
    this.started = Promise.all(startups).then(() => undefined);
  }

  /** Number of workers that have finished starting and can take work now. */
  readyCount(): number {
    let n = 0;
    for (let w = 0; w < this.workers.length; w++) n += Atomics.load(this.ctl, READY + w);
    return n;
  }

  /** Resolves once every worker has started (or failed to). */
  ready(): Promise<void> {
    return this.started;
  }

  get size(): number {
    return this.workers.length - this.dead;
  }

  /** Runs `job` to completion on this thread and whichever workers wake in time. */
  run(job: PoolJob, kernel: (...args: number[]) => void): void {
    const ctl = this.ctl;
    const chunks = Math.ceil(job.rangeEnd / job.chunkSize);
    if (chunks > 0xffff) throw new Error(`matmul thread pool: ${chunks} chunks is too many`);
    const generation = (Atomics.load(ctl, GENERATION) + 1) | 0;
    const tag = (generation & 0xffff) << 16;
    ctl[EXPORT] = job.kernel;
    ctl[CHUNK_SIZE] = job.chunkSize;
    ctl[RANGE_END] = job.rangeEnd;
    ctl[RANGE_ARG] = job.rangeArg;
    ctl[SCRATCH_ARG] = job.scratchArg;
    if (job.args.length > MAX_ARGS) throw new Error(`matmul thread pool: ${job.args.length} arguments`);
    for (let i = 0; i < job.args.length; i++) ctl[ARGS + i] = job.args[i];
    ctl[ARGS_COUNT] = job.args.length;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    // A worker still looking at an older job must never take a chunk of this one with
    // stale fields: claims and the chunk count carry the generation (see the worker).
    Atomics.store(ctl, CHUNKS, tag | chunks);
    Atomics.store(ctl, NEXT, tag);
    Atomics.store(ctl, GENERATION, generation);
    Atomics.notify(ctl, GENERATION);

    const args = job.args.slice();
    if (job.scratchArg >= 0) args[job.scratchArg] = this.scratch(0);
    let error: unknown = null;
    for (;;) {
      // Same compare-and-swap claim as the workers' (an add could overrun into the tag).
      const word = Atomics.load(ctl, NEXT);
      const claim = word & 0xffff;
      if (claim >= chunks) break;
      if (Atomics.compareExchange(ctl, NEXT, word, word + 1) !== word) continue;
      args[job.rangeArg] = claim * job.chunkSize;
      args[job.rangeArg + 1] = Math.min(job.rangeEnd, (claim + 1) * job.chunkSize);
      try {
        kernel(...args);
      } catch (err) {
        error ??= err;
      }
      Atomics.add(ctl, DONE, 1);
    }
    // Only chunks a worker has claimed and is running are left; a healthy worker finishes
    // one in milliseconds, so a minute without progress means it died mid-chunk.
    for (let done = Atomics.load(ctl, DONE); done < chunks; ) {
      if (Atomics.wait(ctl, DONE, done, this.stallMs) === "timed-out" && Atomics.load(ctl, DONE) === done) {
        throw new Error(
          `matmul worker thread stalled: ${chunks - done} chunk(s) unfinished after ${this.stallMs} ms`,
        );
      }
      done = Atomics.load(ctl, DONE);
    }
    if (error !== null) throw error;
    if (Atomics.load(ctl, FAILED) !== 0)
      throw new Error("matmul worker thread failed (out-of-bounds operand?)");
  }

  /** Stops the workers (tests; normal processes just exit, the workers are unref'd). */
  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
