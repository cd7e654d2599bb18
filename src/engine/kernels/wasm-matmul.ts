import { MR, NR, SCRATCH_BYTES } from "./matmul-layout.ts";
import { swigluRange } from "./swiglu-range.mjs";
import { GEMM, GEMM_COLS, GEMM_NT, GEMV, GEMV_ROWS, GEMV8, MatmulThreadPool, SWIGLU } from "./thread-pool.ts";
import { checkMatmulArgs } from "./ts-matmul.ts";
import { tsCausalSoftmax } from "./ts-softmax.ts";
import type { MatmulKernels } from "./types.ts";
import { wasmApi } from "./wasm-api.ts";
import { WasmHeap } from "./wasm-heap.ts";
import type { LoadedKernelModule } from "./wasm-module.ts";

/**
 * The WASM SIMD matmul. Operands that do not already live in the kernel's shared linear
 * memory (see `alloc`) are copied into a growable staging block (O(n²) copies against
 * O(n³) compute); `gemm` (packed, 4×8 register tiles) runs on row slices, or `gemv` on
 * column slices for thin products (m < 4), on this thread plus worker threads when the
 * product is large; C is copied back out unless it lives in WASM memory.
 */

/** Below this many multiply-adds a matmul stays on one thread: waking workers costs more. */
export const DEFAULT_PARALLEL_MIN_MACS = 1 << 22;
/** gemv's widest column block; column chunks for threads are multiples of it. */
const GEMV_BLOCK = 32;
/** Smallest chunk worth a thread: below this, per-chunk packing and wake-ups dominate. */
const MIN_CHUNK_ROWS = 16;
const MIN_CHUNK_COLUMNS = 128;
/**
 * gemmCols chunks: each packs all of op(A) again, so they are wide (a chunk of c columns
 * packs m·k of A against c·k of B) and fewer (about 2 a thread).
 */
const MIN_CHUNK_GEMM_COLUMNS = 256;
/**
 * Decode products (one row times a weight matrix) are split from this size: they stream
 * the weights once, so a second thread's bandwidth pays for its wake-up sooner than in a
 * compute-bound gemm.
 */
const DECODE_PARALLEL_MIN_MACS = 1 << 18;
/** SwiGLU is split across threads from this many elements (a prefill's MLP: tokens × intermediate). */
const SWIGLU_PARALLEL_MIN = 1 << 16;
const SWIGLU_CHUNK = 1 << 14;
/** Rows of W per decode chunk, at least (a multiple of 8: whole gemv8 panels). */
const MIN_CHUNK_DECODE_ROWS = 64;

type KernelFn = (...args: number[]) => void;

export interface WasmKernelOptions {
  /** Total threads including the caller's; 1 disables workers. */
  threads: number;
  /** Minimum m·n·k for a product to be split across threads. */
  parallelMinMacs?: number;
  /** Milliseconds without progress on a worker's chunk before matmul throws (default 60 s). */
  stallMs?: number;
  /** Test hook: workers sleep this long after each chunk, to provoke stale-job races. */
  workerPauseMs?: number;
}

/**
 * Raw entry points for the single-token decode path (src/engine/decode.ts). Every
 * operand is a byte address in the kernels' memory (an `alloc`ed view's byteOffset);
 * nothing is checked or copied, so callers validate shapes once up front.
 */
export interface DecodeKernels {
  /** c[0, n) (+)= a[0, k) · Bᵀ with B stored [n, k] (nn.Linear's layout); split across threads when large. */
  gemvT(a: number, b: number, c: number, n: number, k: number, accumulate: boolean): void;
  /** dst = W [n, k] as 8-row panels for gemv8 (k a multiple of 4; 8·ceil(n/8)·k floats, padding zeroed). */
  pack8(src: number, dst: number, n: number, k: number): void;
  /** c[0, 8·ceil(n/8)) (+)= a[0, k) · Wᵀ with W packed by pack8 (c padded to a multiple of 8); split across threads when large. */
  gemv8(a: number, packed: number, c: number, n: number, k: number, accumulate: boolean): void;
  /**
   * c[0, n) (+)= a[0, k) · Wᵀ, W row-major [n, k] read as one stream row by row (k a
   * multiple of 4; its own summation order, not gemvT's); split across threads when large.
   */
  gemvRows(a: number, b: number, c: number, n: number, k: number, accumulate: boolean): void;
  /** out[0, n) = RMSNorm(x) · w (n a multiple of 4). */
  rmsnorm(x: number, w: number, out: number, n: number, eps: number): void;
  /** out[0, n) = silu(g) · u (n a multiple of 4). */
  swiglu(g: number, u: number, out: number, n: number): void;
  /** Single-query GQA over one batch row of a KvCache layer (see decode.wat; D a multiple of 16). */
  attend(
    q: number,
    k: number,
    v: number,
    out: number,
    scores: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    length: number,
    stride: number,
    scale: number,
  ): void;
}

export interface WasmMatmulKernels extends MatmulKernels {
  readonly name: "wasm-simd";
  readonly threads: number;
  readonly relaxedSimd: boolean;
  ready(): Promise<void>;
  /** softmax.wat when it loaded, else the TS loop (see MatmulKernels.causalSoftmax). */
  causalSoftmax(x: Float32Array, rows: number, cols: number, offset: number, scale: number): void;
  /**
   * A zero-filled Float32Array inside the kernels' WASM memory: matmuls read and write
   * it in place, with no copy. The caller owns it until `free` (no GC reclaims it).
   */
  alloc(length: number): Float32Array;
  /** Returns an `alloc`ed array's memory for reuse; the array must not be used after. */
  free(view: Float32Array): void;
  /** Whether `view` (an `alloc`ed array or a subarray of one) lives in WASM memory. */
  isWasmBacked(view: Float32Array): boolean;
  /** decode.wat's kernels, or null when decode.wasm did not load (the decode path then falls back). */
  readonly decode: DecodeKernels | null;
  /**
   * out = silu(gate) · up elementwise, bit-identical to ops/elementwise.ts's swiglu (the
   * same JS expression), split across the worker threads when large. Any arrays; those
   * outside kernel memory are staged.
   */
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array): void;
  /** How many matmuls ran, and how many of them were split across threads. */
  stats(): { calls: number; parallelCalls: number; stagedBytes: number };
  /** Stops the worker threads (tests; they are unref'd, so processes exit without it). */
  terminate(): Promise<void>;
}

export function createWasmKernels(loaded: LoadedKernelModule, options: WasmKernelOptions): WasmMatmulKernels {
  if (wasmApi === undefined) throw new Error("WebAssembly is not available");
  const threads = Math.max(1, Math.floor(options.threads));
  const parallelMinMacs = options.parallelMinMacs ?? DEFAULT_PARALLEL_MIN_MACS;
  const scratchBase = 64;
  const heapBase = scratchBase + threads * SCRATCH_BYTES;
  const memory = new wasmApi.Memory({
    initial: Math.ceil(heapBase / 65536) + 16,
    maximum: 65536,
    shared: true,
  });
  const exports = new wasmApi.Instance(loaded.module, { env: { memory } }).exports;
  const gemm = exports.gemm as KernelFn;
  const gemv = exports.gemv as KernelFn;
  const packBAll = exports.packBAll as KernelFn;
  const gemv8 = exports.gemv8 as KernelFn;
  const gemv8Range = exports.gemv8Range as KernelFn | undefined;
  const gemvRows = exports.gemvRows as KernelFn | undefined;
  // Absent from a stale matmul.wasm: products then always split by rows.
  const gemmCols = typeof exports.gemmCols === "function" ? (exports.gemmCols as KernelFn) : null;
  const gemmNT = typeof exports.gemmNT === "function" ? (exports.gemmNT as KernelFn) : null;
  const softmaxKernel =
    loaded.softmax === null
      ? null
      : (new wasmApi.Instance(loaded.softmax, { env: { memory } }).exports.causalSoftmax as KernelFn);
  const decodeExports =
    loaded.decode === null ? null : new wasmApi.Instance(loaded.decode, { env: { memory } }).exports;
  const pool =
    threads > 1
      ? new MatmulThreadPool(
          loaded.module,
          memory,
          threads - 1,
          (t) => scratchBase + t * SCRATCH_BYTES,
          options.stallMs,
          options.workerPauseMs,
        )
      : null;

  // Every SharedArrayBuffer object this memory has exposed (a new one after each grow);
  // views on any of them address the same bytes.
  const buffers = new WeakSet<ArrayBufferLike>();
  let f32 = new Float32Array(memory.buffer);
  buffers.add(f32.buffer);
  const heap = new WasmHeap(memory, heapBase, () => {
    f32 = new Float32Array(memory.buffer);
    buffers.add(f32.buffer);
  });
  let staging = heap.alloc(1 << 20);
  let stagingBytes = 1 << 20;
  let calls = 0;
  let parallelCalls = 0;
  let stagedBytes = 0;

  const isWasmBacked = (view: Float32Array) => buffers.has(view.buffer);

  /** Byte address of `view` if it is in WASM memory and does not overlap `avoid`. */
  function inPlace(view: Float32Array, length: number, ...avoid: (Float32Array | null)[]): number {
    if (!isWasmBacked(view)) return -1;
    const start = view.byteOffset;
    const end = start + length * 4;
    for (const other of avoid) {
      if (
        other !== null &&
        isWasmBacked(other) &&
        other.byteOffset < end &&
        start < other.byteOffset + other.byteLength
      ) {
        return -1;
      }
    }
    return start;
  }

  function ensureStaging(bytes: number): void {
    if (bytes <= stagingBytes) return;
    heap.release(staging);
    stagingBytes = Math.ceil(bytes * 1.25);
    staging = heap.alloc(stagingBytes);
  }

  /**
   * Rows (gemm) or columns (gemv) per chunk when this product is worth sharing with the
   * ready workers, else 0. About 4 chunks a thread: fine enough to rebalance when a core
   * is busy with other work, coarse enough that per-chunk A packing stays cheap.
   */
  function chunkSize(split: "gemv" | "rows" | "cols" | "nt", m: number, n: number, k: number): number {
    const helpers = pool === null || m * n * k < parallelMinMacs ? 0 : pool.readyCount();
    if (helpers === 0) return 0;
    const extent = split === "rows" ? m : n;
    const unit = split === "gemv" ? GEMV_BLOCK : split === "rows" ? MR : split === "nt" ? 4 : NR;
    const minChunk =
      split === "gemv" || split === "nt"
        ? MIN_CHUNK_COLUMNS
        : split === "rows"
          ? MIN_CHUNK_ROWS
          : MIN_CHUNK_GEMM_COLUMNS;
    const perThread = split === "cols" ? 2 : 4;
    const target = Math.ceil(extent / ((helpers + 1) * perThread) / unit) * unit;
    const size = Math.max(Math.min(minChunk, Math.ceil(extent / 2 / unit) * unit), target);
    return size < extent ? size : 0;
  }

  /** Rows per chunk of a decode product over n rows of W (a multiple of 8), or 0 for one thread. */
  function decodeChunk(n: number, k: number): number {
    const helpers =
      pool === null || n * k < Math.min(parallelMinMacs, DECODE_PARALLEL_MIN_MACS) ? 0 : pool.readyCount();
    if (helpers === 0) return 0;
    const target = Math.ceil(n / ((helpers + 1) * 4) / 8) * 8;
    const size = Math.max(Math.min(MIN_CHUNK_DECODE_ROWS, Math.ceil(n / 2 / 8) * 8), target);
    return size < n ? size : 0;
  }

  // Both halves are needed: decode.wasm, and a matmul binary new enough to have gemv8.
  const decode: DecodeKernels | null =
    decodeExports === null || typeof exports.gemv8 !== "function" || typeof exports.pack8 !== "function"
      ? null
      : {
          gemvT(a, b, c, n, k, accumulate) {
            calls++;
            const acc = accumulate ? 1 : 0;
            const chunk = chunkSize("gemv", 1, n, k);
            if (chunk === 0) gemv(a, b, c, 1, n, k, 1, acc, 0, 1, 0, n, 0);
            else {
              parallelCalls++;
              const args = [a, b, c, 1, n, k, 1, acc, 0, 1, 0, n, 0];
              pool!.run(
                { kernel: GEMV, args, rangeArg: 10, scratchArg: -1, rangeEnd: n, chunkSize: chunk },
                gemv,
              );
            }
          },
          pack8: exports.pack8 as DecodeKernels["pack8"],
          gemv8(a, packed, c, n, k, accumulate) {
            calls++;
            const acc = accumulate ? 1 : 0;
            const chunk = gemv8Range === undefined ? 0 : decodeChunk(n, k);
            if (chunk === 0) gemv8(a, packed, c, n, k, acc);
            else {
              // In 8-row panels: the pool's range is panel indices.
              parallelCalls++;
              const panels = Math.ceil(n / 8);
              const args = [a, packed, c, n, k, acc, 0, panels];
              pool!.run(
                { kernel: GEMV8, args, rangeArg: 6, scratchArg: -1, rangeEnd: panels, chunkSize: chunk / 8 },
                gemv8Range!,
              );
            }
          },
          gemvRows(a, b, c, n, k, accumulate) {
            calls++;
            const acc = accumulate ? 1 : 0;
            // A matmul binary older than gemvRows: gemvT (4 rows at a time) instead.
            if (gemvRows === undefined) return this.gemvT(a, b, c, n, k, accumulate);
            const chunk = decodeChunk(n, k);
            if (chunk === 0) gemvRows(a, b, c, n, k, acc, 0, n);
            else {
              parallelCalls++;
              const args = [a, b, c, n, k, acc, 0, n];
              pool!.run(
                { kernel: GEMV_ROWS, args, rangeArg: 6, scratchArg: -1, rangeEnd: n, chunkSize: chunk },
                gemvRows,
              );
            }
          },
          rmsnorm: decodeExports.rmsnorm as DecodeKernels["rmsnorm"],
          swiglu: decodeExports.swiglu as DecodeKernels["swiglu"],
          attend: decodeExports.attend as DecodeKernels["attend"],
        };

  return {
    name: "wasm-simd",
    decode,
    swiglu(gate, up, out) {
      const n = out.length;
      if (gate.length < n || up.length < n)
        throw new Error(`swiglu: gate ${gate.length}, up ${up.length}, out ${n} elements`);
      const helpers = pool === null || n < SWIGLU_PARALLEL_MIN ? 0 : pool.readyCount();
      if (helpers === 0) {
        for (let i = 0; i < n; i++) {
          const x = gate[i];
          const s = 1 / (1 + Math.exp(-x));
          out[i] = x * s * up[i];
        }
        return;
      }
      const bytes = Math.ceil((n * 4) / 64) * 64;
      let gPtr = inPlace(gate, n);
      let uPtr = inPlace(up, n);
      let oPtr = inPlace(out, n, gate, up);
      ensureStaging((gPtr < 0 ? bytes : 0) + (uPtr < 0 ? bytes : 0) + (oPtr < 0 ? bytes : 0));
      let next = staging;
      const stage = (src: Float32Array | null): number => {
        const ptr = next;
        next += bytes;
        if (src !== null) f32.set(src.length === n ? src : src.subarray(0, n), ptr >>> 2);
        return ptr;
      };
      if (gPtr < 0) gPtr = stage(gate);
      if (uPtr < 0) uPtr = stage(up);
      const oStaged = oPtr < 0;
      if (oStaged) oPtr = stage(null);
      parallelCalls++;
      pool!.run(
        {
          kernel: SWIGLU,
          args: [gPtr, uPtr, oPtr, 0, n],
          rangeArg: 3,
          scratchArg: -1,
          rangeEnd: n,
          chunkSize: SWIGLU_CHUNK,
        },
        (g, u, o, i0, i1) => swigluRange(f32, g, u, o, i0, i1),
      );
      if (oStaged) out.set(f32.subarray(oPtr >>> 2, (oPtr >>> 2) + n));
    },
    get threads() {
      return pool === null ? 1 : pool.size + 1;
    },
    relaxedSimd: loaded.relaxed,
    ready: () => (pool === null ? Promise.resolve() : pool.ready()),
    terminate: () => (pool === null ? Promise.resolve() : pool.terminate()),
    stats: () => ({ calls, parallelCalls, stagedBytes }),
    isWasmBacked,
    alloc(length) {
      if (!Number.isInteger(length) || length < 0)
        throw new Error(`alloc: length must be a non-negative integer, got ${length}`);
      const ptr = heap.allocZeroed(length * 4);
      return new Float32Array(f32.buffer, ptr, length);
    },
    free(view) {
      if (!isWasmBacked(view)) throw new Error("free: this Float32Array was not allocated by these kernels");
      heap.release(view.byteOffset);
    },
    causalSoftmax(x, rows, cols, offset, scale) {
      if (softmaxKernel === null) {
        tsCausalSoftmax(x, rows, cols, offset, scale);
        return;
      }
      if (![rows, cols, offset].every(Number.isInteger) || rows < 0 || cols < 0) {
        throw new Error(
          `causalSoftmax: rows, cols and offset must be integers, got ${rows}, ${cols}, ${offset}`,
        );
      }
      const length = rows * cols;
      if (x.length < length)
        throw new Error(`causalSoftmax: x has ${x.length} elements, needs rows·cols = ${length}`);
      if (length === 0) return;
      let ptr = inPlace(x, length);
      const staged = ptr < 0;
      if (staged) {
        ensureStaging(length * 4);
        ptr = staging;
        f32.set(x.length === length ? x : x.subarray(0, length), ptr >>> 2);
      }
      // Clamped so it fits an i32 without changing any row's length.
      softmaxKernel(ptr, rows, cols, Math.max(-rows - 1, Math.min(offset, cols)), scale);
      if (staged) x.set(f32.subarray(ptr >>> 2, (ptr >>> 2) + length));
    },
    matmul(a, b, c, m, n, k, transA, transB, accumulate) {
      checkMatmulArgs(a, b, c, m, n, k);
      calls++;
      const mn = m * n;
      if (mn === 0) return;
      // C is written while A and B are read, so it is only used in place when disjoint from both.
      let aPtr = inPlace(a, m * k);
      let bPtr = inPlace(b, k * n);
      let cPtr = inPlace(c, mn, a, b);
      // Thin products skip packing: gemv reads op(A)'s rows directly, so they must be
      // contiguous (A not transposed, or a single row, whose layout is the same either way).
      const thin = m < MR && (!transA || m === 1);
      // x · Wᵀ with fewer rows than columns (a prefill's projections: m tokens × n
      // outputs): gemmNT reads W in place instead of packing it, threads split the columns.
      const nt = !thin && gemmNT !== null && !transA && transB && n >= m;
      // Other wide products split by columns, so each thread packs only its share of
      // op(B) (see gemmCols).
      const byCols = !thin && !nt && gemmCols !== null && n >= m && chunkSize("cols", m, n, k) > 0;
      const chunk = chunkSize(thin ? "gemv" : nt ? "nt" : byCols ? "cols" : "rows", m, n, k);
      // Row-split gemm: op(B) is packed once here for every thread instead of once per chunk;
      // gemmNT split across threads: x is packed once here instead.
      const packedBytes =
        thin || byCols || chunk === 0 ? 0 : nt ? k * Math.ceil(m / 8) * 8 * 4 : k * Math.ceil(n / 8) * 8 * 4;
      const staged = (bytes: number) => Math.ceil(bytes / 64) * 64;
      ensureStaging(
        (aPtr < 0 ? staged(m * k * 4) : 0) +
          (bPtr < 0 ? staged(k * n * 4) : 0) +
          (cPtr < 0 ? staged(mn * 4) : 0) +
          staged(packedBytes),
      );
      let next = staging;
      const stage = (src: Float32Array | null, length: number, copyIn: boolean): number => {
        const ptr = next;
        next += staged(length * 4);
        if (src !== null && copyIn) {
          f32.set(src.length === length ? src : src.subarray(0, length), ptr >>> 2);
          stagedBytes += length * 4;
        }
        return ptr;
      };
      if (aPtr < 0) aPtr = stage(a, m * k, true);
      if (bPtr < 0) bPtr = stage(b, k * n, true);
      const cStaged = cPtr < 0;
      if (cStaged) cPtr = stage(c, mn, accumulate);
      const tA = transA ? 1 : 0;
      const tB = transB ? 1 : 0;
      const acc = accumulate ? 1 : 0;
      if (thin) {
        const args = [aPtr, bPtr, cPtr, m, n, k, tB, acc, 0, m, 0, n, 0];
        if (chunk === 0) gemv(...args);
        else {
          parallelCalls++;
          pool!.run(
            { kernel: GEMV, args, rangeArg: 10, scratchArg: -1, rangeEnd: n, chunkSize: chunk },
            gemv,
          );
        }
      } else if (nt) {
        if (chunk === 0) gemmNT!(aPtr, bPtr, cPtr, m, n, k, acc, 0, n, scratchBase, 0);
        else {
          parallelCalls++;
          // x packed once for every thread (small next to W), so chunks can be fine.
          const packed = stage(null, packedBytes / 4, false);
          packBAll(aPtr, packed, m, k, 1);
          const args = [aPtr, bPtr, cPtr, m, n, k, acc, 0, n, scratchBase, packed];
          pool!.run(
            { kernel: GEMM_NT, args, rangeArg: 7, scratchArg: 9, rangeEnd: n, chunkSize: chunk },
            gemmNT!,
          );
        }
      } else if (chunk === 0) {
        gemm(aPtr, bPtr, cPtr, m, n, k, tA, tB, acc, 0, m, scratchBase, 0);
      } else if (byCols) {
        parallelCalls++;
        const args = [aPtr, bPtr, cPtr, m, n, k, tA, tB, acc, 0, n, scratchBase];
        pool!.run(
          { kernel: GEMM_COLS, args, rangeArg: 9, scratchArg: 11, rangeEnd: n, chunkSize: chunk },
          gemmCols!,
        );
      } else {
        parallelCalls++;
        const packed = stage(null, packedBytes / 4, false);
        packBAll(bPtr, packed, n, k, tB);
        const args = [aPtr, bPtr, cPtr, m, n, k, tA, tB, acc, 0, m, scratchBase, packed];
        pool!.run({ kernel: GEMM, args, rangeArg: 9, scratchArg: 11, rangeEnd: m, chunkSize: chunk }, gemm);
      }
      if (cStaged) c.set(f32.subarray(cPtr >>> 2, (cPtr >>> 2) + mn));
    },
  };
}
