import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getKernels } from "../../../src/engine/kernels/index.ts";
import { createTsKernels } from "../../../src/engine/kernels/ts-matmul.ts";
import type { MatmulKernels } from "../../../src/engine/kernels/types.ts";
import { createWasmKernels, type WasmMatmulKernels } from "../../../src/engine/kernels/wasm-matmul.ts";
import { loadKernelModule } from "../../../src/engine/kernels/wasm-module.ts";
import { swiglu } from "../../../src/engine/ops/elementwise.ts";
import { Tensor } from "../../../src/engine/tensor.ts";

/** mulberry32: small and deterministic. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomMatrix(rand: () => number, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = rand() * 2 - 1;
  return out;
}

/** op(A)·op(B) in float64, plus Σ|a·b| per element, which bounds float32 rounding in any order. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
) {
  const value = new Float64Array(m * n);
  const magnitude = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let mag = 0;
      for (let p = 0; p < k; p++) {
        const x = tA ? a[p * m + i] : a[i * k + p];
        const y = tB ? b[j * k + p] : b[p * n + j];
        s += x * y;
        mag += Math.abs(x * y);
      }
      value[i * n + j] = s;
      magnitude[i * n + j] = mag;
    }
  }
  return { value, magnitude };
}

// [m, n, k]: every size of the odd ladder appears in every position; m < 4 takes the
// WASM gemv path; the last rows cross the block edges (MC=128 rows, KC=256 depth,
// NC=1024 columns, 4×8 tiles).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 17, 33],
  [1, 300, 70],
  [2, 33, 17],
  [3, 70, 9],
  [3, 7, 17],
  [7, 3, 1],
  [17, 33, 7],
  [33, 64, 100],
  [64, 100, 3],
  [100, 1, 64],
  [5, 9, 300],
  [130, 1030, 5],
  [257, 12, 260],
];

function expectClose(kernels: MatmulKernels, seed: number) {
  const rand = seededRandom(seed);
  for (const [m, n, k] of SHAPES) {
    const a = randomMatrix(rand, m * k);
    const b = randomMatrix(rand, k * n);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const ref = reference(a, b, m, n, k, transA, transB);
        for (const accumulate of [false, true]) {
          const before = randomMatrix(rand, m * n + 3);
          // Without accumulate, C's old contents (here NaN) must not leak into the result.
          if (!accumulate) before.fill(Number.NaN, 0, m * n);
          const c = before.slice();
          kernels.matmul(a, b, c, m, n, k, transA, transB, accumulate);
          let worst = 0;
          for (let i = 0; i < m * n; i++) {
            const want = ref.value[i] + (accumulate ? before[i] : 0);
            const err =
              Math.abs(c[i] - want) / (ref.magnitude[i] + (accumulate ? Math.abs(before[i]) : 0) + 1e-30);
            if (!(err <= worst)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
          }
          const where = `${kernels.name} m=${m} n=${n} k=${k} transA=${transA} transB=${transB} acc=${accumulate}`;
          expect(worst, where).toBeLessThan(1e-5);
          // Elements past m·n are not C's: untouched.
          expect(Array.from(c.subarray(m * n)), where).toEqual(Array.from(before.subarray(m * n)));
        }
      }
    }
  }
}

describe("pure-TS matmul", () => {
  it("matches a float64 reference for every transpose/accumulate variant and odd size", () => {
    expectClose(createTsKernels(), 1);
  });

  it("rejects buffers too small for the declared shape, naming the operand", () => {
    const ts = createTsKernels();
    expect(() =>
      ts.matmul(new Float32Array(5), new Float32Array(6), new Float32Array(4), 2, 2, 3, false, false, false),
    ).toThrow(/A has 5 elements, needs m·k = 6/);
  });

  it("k = 0 gives zeros, or leaves C alone when accumulating", () => {
    const ts = createTsKernels();
    const c = new Float32Array([1, 2, 3, 4]);
    ts.matmul(new Float32Array(0), new Float32Array(0), c, 2, 2, 0, false, false, true);
    expect(Array.from(c)).toEqual([1, 2, 3, 4]);
    ts.matmul(new Float32Array(0), new Float32Array(0), c, 2, 2, 0, false, false, false);
    expect(Array.from(c)).toEqual([0, 0, 0, 0]);
  });
});

describe("WASM SIMD matmul", () => {
  const loaded = loadKernelModule();
  if (typeof loaded === "string")
    throw new Error(`WASM kernels should load in the test environment: ${loaded}`);
  let single: WasmMatmulKernels;
  let threaded: WasmMatmulKernels;

  beforeAll(async () => {
    single = createWasmKernels(loaded, { threads: 1 });
    // parallelMinMacs 0 forces even the tiny shapes through the worker split.
    // stallMs: a lost wake-up or a lost chunk fails the test instead of hanging it.
    threaded = createWasmKernels(loaded, { threads: 2, parallelMinMacs: 0, stallMs: 5000 });
    await threaded.ready();
  });
  afterAll(async () => {
    await threaded.terminate();
  });

  it("matches the reference on one thread", () => {
    expect(single.threads).toBe(1);
    expectClose(single, 2);
  });

  it("matches the reference split across two threads", () => {
    expect(threaded.threads).toBe(2);
    const before = threaded.stats().parallelCalls;
    expectClose(threaded, 3);
    // With no size threshold every product of two or more chunks is split: gemm when
    // m > 4 (8 shapes × 8 variants), gemv (m < 4, A untransposed or m = 1) when n > 32:
    // 1×300 in all 8 variants, 2×33 and 3×70 in the 4 with A untransposed; 2×33 and 3×70
    // with A transposed go through gemm split by columns (n ≥ m).
    expect(threaded.stats().parallelCalls - before).toBe(8 * 8 + 8 + 4 + 4 + 4 + 4);
  });

  it("survives thousands of back-to-back split calls (no lost wake-up, no stale job)", () => {
    const rand = seededRandom(8);
    const shapes: [number, number, number, boolean][] = [
      [12, 40, 8, false],
      [1, 96, 16, true],
      [40, 9, 3, true],
      [9, 4, 2, false],
    ];
    const cases = shapes.map(([m, n, k, tB]) => {
      const a = randomMatrix(rand, m * k);
      const b = randomMatrix(rand, k * n);
      return { m, n, k, tB, a, b, want: reference(a, b, m, n, k, false, tB) };
    });
    const before = threaded.stats().parallelCalls;
    for (let i = 0; i < 15000; i++) {
      const { m, n, k, tB, a, b, want } = cases[i % cases.length];
      const c = new Float32Array(m * n);
      threaded.matmul(a, b, c, m, n, k, false, tB, false);
      for (let j = 0; j < m * n; j += 7) {
        if (!(Math.abs(c[j] - want.value[j]) <= 1e-5 * want.magnitude[j] + 1e-7)) {
          throw new Error(`call ${i}: element ${j} is ${c[j]}, want ${want.value[j]}`);
        }
      }
    }
    expect(threaded.stats().parallelCalls - before).toBe(15000);
  });

  it("never loses a chunk to a worker still holding the previous job", async () => {
    // The worker sleeps 3 ms after each chunk, so every next job is published while it
    // still holds the old generation: a stale claim must neither take nor waste a chunk.
    const slow = createWasmKernels(loaded, {
      threads: 2,
      parallelMinMacs: 0,
      stallMs: 2000,
      workerPauseMs: 3,
    });
    await slow.ready();
    try {
      const rand = seededRandom(9);
      const [m, n, k] = [256, 256, 128];
      const a = randomMatrix(rand, m * k);
      const b = randomMatrix(rand, k * n);
      const want = reference(a, b, m, n, k, false, false);
      const c = new Float32Array(m * n);
      for (let i = 0; i < 150; i++) {
        slow.matmul(a, b, c, m, n, k, false, false, false);
        for (let j = i % 13; j < m * n; j += 13) {
          if (!(Math.abs(c[j] - want.value[j]) <= 1e-5 * want.magnitude[j] + 1e-7)) {
            throw new Error(`call ${i}: element ${j} is ${c[j]}, want ${want.value[j]}`);
          }
        }
      }
    } finally {
      await slow.terminate();
    }
  });

  it("gives bit-identical results on one and two threads (same per-element summation order)", () => {
    const rand = seededRandom(4);
    const [m, n, k] = [96, 40, 300];
    const a = randomMatrix(rand, m * k);
    const b = randomMatrix(rand, k * n);
    const c1 = new Float32Array(m * n);
    const c2 = new Float32Array(m * n);
    single.matmul(a, b, c1, m, n, k, true, true, false);
    threaded.matmul(a, b, c2, m, n, k, true, true, false);
    expect(Array.from(c2)).toEqual(Array.from(c1));
  });

  it("splits wide products by columns, bit-identical to one thread (every variant, with bias)", () => {
    const rand = seededRandom(10);
    // n ≥ m takes gemmCols; 1300 columns cross an NC block and end in a partial 8-column strip.
    const [m, n, k] = [13, 1300, 300];
    const a = randomMatrix(rand, m * k);
    const b = randomMatrix(rand, k * n);
    const bias = randomMatrix(rand, m * n);
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      for (const acc of [false, true]) {
        const c1 = bias.slice();
        const c2 = bias.slice();
        single.matmul(a, b, c1, m, n, k, tA, tB, acc);
        const before = threaded.stats().parallelCalls;
        threaded.matmul(a, b, c2, m, n, k, tA, tB, acc);
        expect(threaded.stats().parallelCalls - before).toBe(1);
        expect(Array.from(c2)).toEqual(Array.from(c1));
      }
    }
  });

  it("multiplies x · Wᵀ without packing W (gemmNT), bit-identical to gemm's packed route", () => {
    const rand = seededRandom(11);
    // m ≤ n with !transA, transB takes gemmNT; the same product with A stored transposed
    // goes through gemm's packers. Edges: partial 8-token strips and 4-row W blocks, depth
    // past KC = 256, tokens past NC = 1024.
    const shapes: [number, number, number][] = [
      [4, 4, 1],
      [13, 1301, 300],
      [128, 898, 520],
      [1030, 1101, 3],
    ];
    for (const [m, n, k] of shapes) {
      const x = randomMatrix(rand, m * k);
      const xT = new Float32Array(m * k);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) xT[p * m + i] = x[i * k + p];
      const w = randomMatrix(rand, n * k);
      const bias = randomMatrix(rand, m * n);
      for (const acc of [false, true]) {
        const want = bias.slice();
        single.matmul(xT, w, want, m, n, k, true, true, acc);
        for (const kernels of [single, threaded]) {
          const got = bias.slice();
          kernels.matmul(x, w, got, m, n, k, false, true, acc);
          expect(Array.from(got)).toEqual(Array.from(want));
        }
      }
    }
  });

  it("runs SwiGLU split across threads, bit-identical to the autograd op", () => {
    const rand = seededRandom(12);
    const n = 100_003;
    const g = new Float32Array(n);
    const u = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      g[i] = (rand() * 2 - 1) * (i % 7 === 0 ? 100 : 8);
      u[i] = rand() * 2 - 1;
    }
    g.set([0, -0, 1e-30, -1e-30, 88.8, -104, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    const want = swiglu(new Tensor(g, [n]), new Tensor(u, [n])).data;
    for (const kernels of [single, threaded]) {
      const before = kernels.stats().parallelCalls;
      const got = new Float32Array(n);
      kernels.swiglu(g, u, got);
      expect(kernels.stats().parallelCalls - before).toBe(kernels === threaded ? 1 : 0);
      expect(Array.from(got)).toEqual(Array.from(want));
    }
  });

  it("grows its staging memory for operands larger than the initial region", () => {
    const rand = seededRandom(5);
    const [m, n, k] = [600, 9, 700];
    const a = randomMatrix(rand, m * k);
    const b = randomMatrix(rand, k * n);
    const c = new Float32Array(m * n);
    single.matmul(a, b, c, m, n, k, false, false, false);
    const ref = reference(a, b, m, n, k, false, false);
    for (let i = 0; i < m * n; i += 97)
      expect(Math.abs(c[i] - ref.value[i])).toBeLessThan(1e-5 * ref.magnitude[i] + 1e-6);
  });

  it("is what getKernels('wasm') returns, one shared instance per thread count", () => {
    const k1 = getKernels("wasm", { threads: 1 });
    expect(k1.name).toBe("wasm-simd");
    expect(getKernels("wasm", { threads: 1 })).toBe(k1);
  });

  describe("operands kept in WASM memory (alloc)", () => {
    it("multiplies alloc'ed operands in place, with no staging copies", () => {
      const rand = seededRandom(6);
      const [m, n, k] = [37, 50, 29];
      const a = single.alloc(m * k);
      const b = single.alloc(k * n);
      const c = single.alloc(m * n);
      a.set(randomMatrix(rand, m * k));
      b.set(randomMatrix(rand, k * n));
      expect(single.isWasmBacked(a) && single.isWasmBacked(c.subarray(3))).toBe(true);
      expect(single.isWasmBacked(new Float32Array(4))).toBe(false);
      const staged = single.stats().stagedBytes;
      single.matmul(a, b, c, m, n, k, false, true, false);
      expect(single.stats().stagedBytes).toBe(staged);
      const ref = reference(a, b, m, n, k, false, true);
      for (let i = 0; i < m * n; i++)
        expect(Math.abs(c[i] - ref.value[i])).toBeLessThan(1e-5 * ref.magnitude[i] + 1e-7);
      for (const v of [a, b, c]) single.free(v);
    });

    it("stages C when it overlaps A, so A is read before it is overwritten", () => {
      const rand = seededRandom(7);
      const [m, n, k] = [6, 5, 9];
      const a = single.alloc(m * k);
      a.set(randomMatrix(rand, m * k));
      const b = randomMatrix(rand, k * n);
      const ref = reference(a.slice(), b, m, n, k, false, false);
      const c = a.subarray(2, 2 + m * n);
      single.matmul(a, b, c, m, n, k, false, false, false);
      for (let i = 0; i < m * n; i++)
        expect(Math.abs(c[i] - ref.value[i])).toBeLessThan(1e-5 * ref.magnitude[i] + 1e-7);
      single.free(a);
    });

    it("keeps earlier views valid when the memory grows, and reuses freed blocks", () => {
      const small = single.alloc(8);
      small.set([1, 2, 3, 4, 5, 6, 7, 8]);
      const big = single.alloc(24 << 20); // 96 MiB: forces memory.grow
      expect(Array.from(small)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const c = new Float32Array(4);
      // [1 2 3 4; 5 6 7 8] · I(4)[:, 0..2) through the pre-growth view.
      single.matmul(small, Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0]), c, 2, 2, 4, false, false, false);
      expect(Array.from(c)).toEqual([1, 2, 5, 6]);
      const offset = big.byteOffset;
      single.free(big);
      const again = single.alloc(24 << 20);
      expect(again.byteOffset).toBe(offset);
      expect(again[12345]).toBe(0);
      single.free(again);
      single.free(small);
      expect(() => single.free(new Float32Array(2))).toThrow(/not allocated by these kernels/);
    });
  });
});
