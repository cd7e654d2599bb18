// A matmul worker thread: instantiates the kernel module on the shared memory, sleeps in
// Atomics.wait until a job is published, then claims chunks of it until none are left.
// Plain JS (not TS) so it loads the same way under node, tsx and vitest. The control
// block layout is documented in thread-pool.ts.
import { parentPort, workerData } from "node:worker_threads";
import { swigluRange } from "./swiglu-range.mjs";

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
const ARGS_COUNT = 23;
const READY = 24;

const { module, memory, control, index, scratch, pauseAfterChunkMs } = workerData;
// Test hook (0 in normal use): sleep after each chunk, so a test can make this worker
// meet the next job while still holding the previous job's generation.
const pause = new Int32Array(new SharedArrayBuffer(4));
const ctl = new Int32Array(control);
const { gemm, gemv, gemmCols, gemvRows, gemv8Range, gemmNT } = new WebAssembly.Instance(module, {
  env: { memory },
}).exports;
// The JS SwiGLU job: one loop shared with the calling thread (swiglu-range.mjs); the view is
// made per call, as the shared memory may have grown since the last one.
const swiglu = (g, u, out, i0, i1) => swigluRange(new Float32Array(memory.buffer), g, u, out, i0, i1);

// Indexed by the job's export number (thread-pool.ts).
const kernels = [gemm, gemv, gemmCols, gemvRows, gemv8Range, gemmNT, swiglu];
const args = [];

let seen = Atomics.load(ctl, GENERATION);
Atomics.store(ctl, READY + index, 1);
parentPort.postMessage("ready");

for (;;) {
  Atomics.wait(ctl, GENERATION, seen);
  seen = Atomics.load(ctl, GENERATION);
  const tag = seen & 0xffff;
  for (;;) {
    // Claim the next chunk by compare-and-swap on a counter that carries the job's
    // generation: a worker still holding an older generation can then never consume (or
    // run) a chunk of a newer job. A successful claim keeps the job unfinished, so the
    // main thread cannot rewrite the job fields until this chunk is done: read them now.
    const chunks = Atomics.load(ctl, CHUNKS);
    if (chunks >>> 16 !== tag) break;
    const claim = Atomics.load(ctl, NEXT);
    if (claim >>> 16 !== tag || (claim & 0xffff) >= (chunks & 0xffff)) break;
    if (Atomics.compareExchange(ctl, NEXT, claim, claim + 1) !== claim) continue;
    const chunk = claim & 0xffff;
    const kernel = kernels[ctl[EXPORT]];
    const size = ctl[CHUNK_SIZE];
    const rangeArg = ctl[RANGE_ARG];
    const scratchArg = ctl[SCRATCH_ARG];
    args.length = ctl[ARGS_COUNT];
    for (let i = 0; i < args.length; i++) args[i] = ctl[ARGS + i];
    if (scratchArg >= 0) args[scratchArg] = scratch;
    args[rangeArg] = chunk * size;
    args[rangeArg + 1] = Math.min(ctl[RANGE_END], (chunk + 1) * size);
    try {
      kernel(...args);
    } catch {
      Atomics.store(ctl, FAILED, 1);
    }
    if (Atomics.add(ctl, DONE, 1) + 1 === (chunks & 0xffff)) Atomics.notify(ctl, DONE);
    if (pauseAfterChunkMs > 0) Atomics.wait(pause, 0, 0, pauseAfterChunkMs);
  }
}
