import { needsGrad, record } from "../autograd.ts";
import { getKernels } from "../kernels/index.ts";
import { kernelMemory } from "../memory.ts";
import { Tensor } from "../tensor.ts";
import { linear } from "./matmul.ts";

/**
 * Mean softmax cross-entropy over the rows of logits [N, V] whose target is >= 0 and
 * whose mask weight (if given) is non-zero: loss = Σ wᵢ·nllᵢ / Σ wᵢ. A target of -100
 * (the HF ignore index) or any negative value counts as masked. Keeps only the per-row
 * log-sum-exp; the backward recomputes the softmax.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, mask?: Float32Array | null): Tensor {
  const V = logits.cols;
  const N = logits.rows;
  if (targets.length !== N)
    throw new Error(`crossEntropy: ${targets.length} targets for ${N} rows of logits`);
  if (mask && mask.length !== N)
    throw new Error(`crossEntropy: mask has ${mask.length} entries for ${N} rows`);
  const x = logits.data;
  const lse = new Float64Array(N);
  let total = 0;
  let weight = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    const w = t < 0 ? 0 : mask ? mask[n] : 1;
    if (w === 0) continue;
    if (t >= V)
      throw new Error(`crossEntropy: target ${t} at row ${n} is outside the vocabulary (size ${V})`);
    const o = n * V;
    let mx = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < V; j++) if (x[o + j] > mx) mx = x[o + j];
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[o + j] - mx);
    lse[n] = mx + Math.log(s);
    total += w * (lse[n] - x[o + t]);
    weight += w;
  }
  const grad = needsGrad(logits);
  // With nothing to predict the loss is 0 (not NaN), so an all-masked batch is harmless.
  const out = new Tensor(Float32Array.of(weight > 0 ? total / weight : 0), [1], grad);
  if (grad && weight > 0) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const dx = logits.ensureGrad();
      const g = dy[0] / weight;
      for (let n = 0; n < N; n++) {
        const t = targets[n];
        const w = t < 0 ? 0 : mask ? mask[n] : 1;
        if (w === 0) continue;
        const o = n * V;
        const l = lse[n];
        const gw = g * w;
        for (let j = 0; j < V; j++) dx[o + j] += gw * Math.exp(x[o + j] - l);
        dx[o + t] -= gw;
      }
    });
  }
  return out;
}

/** Row-wise log-softmax (no grad): for logprobs in generation and scoring. */
export function logSoftmaxRow(x: Float32Array, offset: number, V: number, out: Float32Array): void {
  let mx = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < V; j++) if (x[offset + j] > mx) mx = x[offset + j];
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(x[offset + j] - mx);
  const l = mx + Math.log(s);
  for (let j = 0; j < V; j++) out[j] = x[offset + j] - l;
}

/** Logits rows per chunk of linearCrossEntropy: about 32 M floats (128 MB) at a time. */
const CHUNK_FLOATS = 1 << 25;

export interface LinearCrossEntropyOptions {
  /** Rows of logits made at a time (default: about 128 MB of them). */
  chunkRows?: number;
  /**
   * The seed the backward will get (the Trainer's 1 / gradAccum). With it, dx is made in the
   * forward from each chunk of logits while it is at hand, so the backward needs no second
   * head matmul; a backward with another seed makes the logits again.
   */
  gradSeed?: number;
}

/**
 * crossEntropy(linear(x, w), targets, mask) without holding the logits [N, V]: they are
 * made `chunkRows` rows at a time (each a full row, so the softmax is the same) and reduced
 * to the loss, the per-row log-sum-exp and (with `gradSeed`) dx. For a 152 k vocabulary
 * that is 128 MB in flight instead of two 600 MB copies (logits and their gradient). Every
 * float is computed as in the unfused pair: a matmul's output element does not depend on
 * how many rows are in the call, the loss and dx accumulate in the same order (dx's sum
 * runs over V in one call per row, into a zeroed buffer as there). With a head that trains
 * (full fine-tuning; chunking dW's sum over rows would reorder it), this is the unfused pair.
 */
export function linearCrossEntropy(
  x: Tensor,
  w: Tensor,
  targets: Int32Array,
  mask?: Float32Array | null,
  opts: LinearCrossEntropyOptions = {},
): Tensor {
  if (needsGrad(w)) return crossEntropy(linear(x, w), targets, mask);
  const d = w.shape[1];
  const V = w.shape[0];
  if (x.cols !== d)
    throw new Error(
      `linearCrossEntropy: input has ${x.cols} features, weight [${w.shape.join(", ")}] expects ${d}`,
    );
  const N = x.rows;
  if (targets.length !== N)
    throw new Error(`crossEntropy: ${targets.length} targets for ${N} rows of logits`);
  if (mask && mask.length !== N)
    throw new Error(`crossEntropy: mask has ${mask.length} entries for ${N} rows`);
  const R = Math.min(N, opts.chunkRows ?? Math.max(4, Math.floor(CHUNK_FLOATS / V / 4) * 4));
  const kern = getKernels();
  const mem = kernelMemory();
  const inKernelMemory = (kern as { isWasmBacked?: (v: Float32Array) => boolean }).isWasmBacked;
  const xd = x.data;
  const weightOf = (n: number) => {
    const t = targets[n];
    return t < 0 ? 0 : mask ? mask[n] : 1;
  };

  /** Runs `body(logits, r0, rows, head)` over the row chunks, the head and the chunk buffer in kernel memory. */
  const overChunks = (body: (logits: Float32Array, r0: number, rows: number, head: Float32Array) => void) => {
    // Read in place by every chunk's matmul instead of copied in once per chunk.
    const head = mem && !inKernelMemory?.(w.data) && N > R ? mem.alloc(w.size) : null;
    const buf = mem ? mem.alloc((R + 3) * V) : new Float32Array((R + 3) * V);
    try {
      if (head) head.set(w.data);
      const wd = head ?? w.data;
      for (let r0 = 0, rows = 0; r0 < N; r0 += rows) {
        rows = Math.min(R, N - r0);
        // No chunk of 1-3 rows after the first: the kernels take another path (gemv) for those.
        if (N - r0 - rows < 4) rows = N - r0;
        const logits = buf.subarray(0, rows * V);
        kern.matmul(xd.subarray(r0 * d, (r0 + rows) * d), wd, logits, rows, V, d, false, true, false);
        body(logits, r0, rows, wd);
      }
    } finally {
      if (head) mem!.free(head);
      if (mem) mem.free(buf);
    }
  };

  const lse = new Float64Array(N);
  /** dlogits in place of a chunk's logits, then their product with the head added into dx. */
  const backChunk = (
    g: number,
    dx: Float32Array,
    logits: Float32Array,
    r0: number,
    rows: number,
    wd: Float32Array,
  ) => {
    // softmax·g·w minus g·w at the target: the unfused backward's values, which it
    // accumulates into a zeroed buffer (hence the 0 +).
    for (let r = 0; r < rows; r++) {
      const n = r0 + r;
      const o = r * V;
      const wt = weightOf(n);
      if (wt === 0) {
        logits.fill(0, o, o + V);
        continue;
      }
      const l = lse[n];
      const gw = g * wt;
      for (let j = 0; j < V; j++) logits[o + j] = 0 + gw * Math.exp(logits[o + j] - l);
      logits[o + targets[n]] -= gw;
    }
    kern.matmul(logits, wd, dx.subarray(r0 * d, (r0 + rows) * d), rows, d, V, false, false, true);
  };

  const grad = needsGrad(x);
  // The loss's denominator depends only on the targets, so the forward knows dx's scale.
  let weightAll = 0;
  for (let n = 0; n < N; n++) {
    const wt = weightOf(n);
    if (wt !== 0) weightAll += wt;
  }
  const seed = grad && opts.gradSeed !== undefined && weightAll > 0 ? Math.fround(opts.gradSeed) : null;
  const dxEarly = seed === null ? null : new Float32Array(x.size);
  let total = 0;
  let weight = 0;
  overChunks((logits, r0, rows, wd) => {
    for (let r = 0; r < rows; r++) {
      const n = r0 + r;
      const t = targets[n];
      const wt = weightOf(n);
      if (wt === 0) continue;
      if (t >= V)
        throw new Error(`crossEntropy: target ${t} at row ${n} is outside the vocabulary (size ${V})`);
      const o = r * V;
      let mx = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < V; j++) if (logits[o + j] > mx) mx = logits[o + j];
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(logits[o + j] - mx);
      lse[n] = mx + Math.log(s);
      total += wt * (lse[n] - logits[o + t]);
      weight += wt;
    }
    if (dxEarly !== null) backChunk(seed! / weightAll, dxEarly, logits, r0, rows, wd);
  });
  const out = new Tensor(Float32Array.of(weight > 0 ? total / weight : 0), [1], grad);
  if (grad && weight > 0) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      if (dxEarly !== null && dy[0] === seed && x.grad === null) {
        x.grad = dxEarly;
        return;
      }
      const g = dy[0] / weight;
      const dx = x.ensureGrad();
      overChunks((logits, r0, rows, wd) => backChunk(g, dx, logits, r0, rows, wd));
    });
  }
  return out;
}
