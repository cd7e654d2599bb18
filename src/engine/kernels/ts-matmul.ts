import { tsCausalSoftmax } from "./ts-softmax.ts";
import type { MatmulKernels } from "./types.ts";

/**
 * Pure-TypeScript matmul: GotoBLAS-style blocking with packed panels and a 4×4
 * register-tiled micro-kernel. Every transpose variant goes through the same packing
 * step, so the inner loop only ever reads two contiguous, interleaved panels.
 */

// Micro-tile: MR rows × NR columns held in 16 scalar locals.
const MR = 4;
const NR = 4;
// Block sizes: a KC×NC panel of B and an MC×KC panel of A stay cache-resident.
const KC = 256;
const MC = 64;
const NC = 512;

/** Reusable packing buffers (grown on demand, never shrunk) so no call allocates. */
let packA = new Float64Array(MC * KC);
let packB = new Float64Array(KC * NC);

function ensurePack(aSize: number, bSize: number): void {
  if (packA.length < aSize) packA = new Float64Array(aSize);
  if (packB.length < bSize) packB = new Float64Array(bSize);
}

/**
 * Packs rows [i0, i0+mc) × depth [p0, p0+kc) of op(A) into MR-row strips, each stored
 * depth-major with the MR values of one depth step adjacent (zero-padded past m).
 */
function packPanelA(
  a: Float32Array,
  dst: Float64Array,
  m: number,
  k: number,
  transA: boolean,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
): void {
  const strips = Math.ceil(mc / MR);
  for (let s = 0; s < strips; s++) {
    const base = s * kc * MR;
    for (let r = 0; r < MR; r++) {
      const i = i0 + s * MR + r;
      if (i >= i0 + mc) {
        for (let p = 0; p < kc; p++) dst[base + p * MR + r] = 0;
      } else if (!transA) {
        const row = i * k + p0;
        for (let p = 0; p < kc; p++) dst[base + p * MR + r] = a[row + p];
      } else {
        // A is stored k×m: op(A)[i, p] = a[p*m + i].
        let src = p0 * m + i;
        for (let p = 0; p < kc; p++, src += m) dst[base + p * MR + r] = a[src];
      }
    }
  }
}

/** Packs depth [p0, p0+kc) × columns [j0, j0+nc) of op(B) into NR-column strips. */
function packPanelB(
  b: Float32Array,
  dst: Float64Array,
  n: number,
  k: number,
  transB: boolean,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
): void {
  const strips = Math.ceil(nc / NR);
  for (let s = 0; s < strips; s++) {
    const base = s * kc * NR;
    for (let c = 0; c < NR; c++) {
      const j = j0 + s * NR + c;
      if (j >= j0 + nc) {
        for (let p = 0; p < kc; p++) dst[base + p * NR + c] = 0;
      } else if (transB) {
        // B is stored n×k: op(B)[p, j] = b[j*k + p], contiguous in p.
        const row = j * k + p0;
        for (let p = 0; p < kc; p++) dst[base + p * NR + c] = b[row + p];
      } else {
        let src = p0 * n + j;
        for (let p = 0; p < kc; p++, src += n) dst[base + p * NR + c] = b[src];
      }
    }
  }
}

/** C[rows×cols tile at (i, j)] += Ap-strip · Bp-strip over kc depth steps. */
function microKernel(
  ap: Float64Array,
  aOff: number,
  bp: Float64Array,
  bOff: number,
  kc: number,
  c: Float32Array,
  n: number,
  i: number,
  j: number,
  rows: number,
  cols: number,
): void {
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0;
  let c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
  let c20 = 0,
    c21 = 0,
    c22 = 0,
    c23 = 0;
  let c30 = 0,
    c31 = 0,
    c32 = 0,
    c33 = 0;
  let pa = aOff;
  let pb = bOff;
  for (let p = 0; p < kc; p++, pa += MR, pb += NR) {
    const a0 = ap[pa],
      a1 = ap[pa + 1],
      a2 = ap[pa + 2],
      a3 = ap[pa + 3];
    const b0 = bp[pb],
      b1 = bp[pb + 1],
      b2 = bp[pb + 2],
      b3 = bp[pb + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
  }
  if (rows === MR && cols === NR) {
    let o = i * n + j;
    c[o] += c00;
    c[o + 1] += c01;
    c[o + 2] += c02;
    c[o + 3] += c03;
    o += n;
    c[o] += c10;
    c[o + 1] += c11;
    c[o + 2] += c12;
    c[o + 3] += c13;
    o += n;
    c[o] += c20;
    c[o + 1] += c21;
    c[o + 2] += c22;
    c[o + 3] += c23;
    o += n;
    c[o] += c30;
    c[o + 1] += c31;
    c[o + 2] += c32;
    c[o + 3] += c33;
    return;
  }
  // Edge tile: write only the valid part (the padded lanes hold zeros anyway).
  const t = edgeTile;
  t[0] = c00;
  t[1] = c01;
  t[2] = c02;
  t[3] = c03;
  t[4] = c10;
  t[5] = c11;
  t[6] = c12;
  t[7] = c13;
  t[8] = c20;
  t[9] = c21;
  t[10] = c22;
  t[11] = c23;
  t[12] = c30;
  t[13] = c31;
  t[14] = c32;
  t[15] = c33;
  for (let r = 0; r < rows; r++) {
    const o = (i + r) * n + j;
    for (let q = 0; q < cols; q++) c[o + q] += t[r * NR + q];
  }
}
const edgeTile = new Float64Array(MR * NR);

/** Checks that the buffers are big enough for the declared shape; names what is short. */
export function checkMatmulArgs(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
): void {
  for (const [name, v] of [
    ["m", m],
    ["n", n],
    ["k", k],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`matmul: ${name} must be a non-negative integer, got ${v}`);
  }
  if (a.length < m * k) throw new Error(`matmul: A has ${a.length} elements, needs m·k = ${m * k}`);
  if (b.length < k * n) throw new Error(`matmul: B has ${b.length} elements, needs k·n = ${k * n}`);
  if (c.length < m * n) throw new Error(`matmul: C has ${c.length} elements, needs m·n = ${m * n}`);
}

/**
 * Computes rows [r0, r1) of C; exported so a worker or the WASM fallback can reuse it.
 */
export function tsMatmulRows(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  accumulate: boolean,
  r0: number,
  r1: number,
): void {
  if (!accumulate) c.fill(0, r0 * n, r1 * n);
  if (k === 0 || n === 0 || r1 <= r0) return;
  ensurePack(Math.ceil(MC / MR) * MR * KC, KC * Math.ceil(NC / NR) * NR);
  const ap = packA;
  const bp = packB;
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      packPanelB(b, bp, n, k, transB, p0, kc, j0, nc);
      for (let i0 = r0; i0 < r1; i0 += MC) {
        const mc = Math.min(MC, r1 - i0);
        packPanelA(a, ap, m, k, transA, i0, mc, p0, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = Math.min(NR, nc - jr);
          const bOff = (jr / NR) * kc * NR;
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = Math.min(MR, mc - ir);
            microKernel(ap, (ir / MR) * kc * MR, bp, bOff, kc, c, n, i0 + ir, j0 + jr, rows, cols);
          }
        }
      }
    }
  }
}

export function createTsKernels(): MatmulKernels {
  return {
    name: "ts",
    matmul(a, b, c, m, n, k, transA, transB, accumulate) {
      checkMatmulArgs(a, b, c, m, n, k);
      tsMatmulRows(a, b, c, m, n, k, transA, transB, accumulate, 0, m);
    },
    causalSoftmax: tsCausalSoftmax,
  };
}
