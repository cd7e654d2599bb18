import { needsGrad, record } from "../autograd.ts";
import { Tensor } from "../tensor.ts";

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
