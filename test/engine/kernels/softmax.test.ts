import { describe, expect, it } from "vitest";
import { tsCausalSoftmax } from "../../../src/engine/kernels/ts-softmax.ts";
import { createWasmKernels } from "../../../src/engine/kernels/wasm-matmul.ts";
import { loadKernelModule } from "../../../src/engine/kernels/wasm-module.ts";

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

/** Float64 softmax of one masked row, the reference for both implementations. */
function referenceRow(row: Float32Array, len: number, scale: number): number[] {
  const xs = Array.from(row.subarray(0, len), (v) => v * scale);
  const mx = Math.max(...xs);
  const es = xs.map((v) => Math.exp(v - mx));
  const s = es.reduce((a, b) => a + b, 0);
  return [...es.map((e) => e / s), ...new Array(row.length - len).fill(0)];
}

const loaded = loadKernelModule();
if (typeof loaded === "string" || loaded.softmax === null)
  throw new Error(`WASM softmax should load: ${loaded}`);
const wasm = createWasmKernels(loaded, { threads: 1 });

describe("causal softmax", () => {
  // [rows, cols, offset]: causal from 0, a cached prefix, no mask, odd widths, an empty row.
  const CASES: [number, number, number][] = [
    [1, 1, 0],
    [5, 5, 0],
    [7, 19, 12],
    [3, 33, 100],
    [16, 64, 48],
    [4, 9, -1],
  ];
  for (const [name, run] of [
    ["ts", tsCausalSoftmax],
    ["wasm", wasm.causalSoftmax.bind(wasm)],
  ] as const) {
    it(`${name}: matches a float64 reference on every row, zeros past the mask`, () => {
      const rand = seededRandom(11);
      for (const [rows, cols, offset] of CASES) {
        const x = Float32Array.from({ length: rows * cols }, () => (rand() - 0.5) * 40);
        const original = x.slice();
        run(x, rows, cols, offset, 0.37);
        for (let i = 0; i < rows; i++) {
          const len = Math.max(0, Math.min(cols, offset + i + 1));
          const want =
            len === 0
              ? new Array(cols).fill(0)
              : referenceRow(original.subarray(i * cols, (i + 1) * cols), len, 0.37);
          for (let j = 0; j < cols; j++) {
            const where = `${name} rows=${rows} cols=${cols} offset=${offset} [${i},${j}]`;
            expect(Math.abs(x[i * cols + j] - want[j]), where).toBeLessThanOrEqual(2e-7 + 4e-7 * want[j]);
          }
        }
      }
    });
  }

  it("wasm works in place on alloc'ed rows and leaves the next rows alone", () => {
    const x = wasm.alloc(3 * 8 + 4);
    x.fill(1);
    wasm.causalSoftmax(x, 3, 8, 0, 1);
    expect(Array.from(x.subarray(0, 8))).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(x[9]).toBeCloseTo(0.5, 6);
    expect(Array.from(x.subarray(24))).toEqual([1, 1, 1, 1]);
    wasm.free(x);
  });

  it("rejects a buffer shorter than rows·cols", () => {
    expect(() => wasm.causalSoftmax(new Float32Array(5), 2, 3, 0, 1)).toThrow(
      /x has 5 elements, needs rows·cols = 6/,
    );
    expect(() => tsCausalSoftmax(new Float32Array(5), 2, 3, 0, 1)).toThrow(/x has 5 elements/);
  });
});
