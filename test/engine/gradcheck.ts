import { backward, clearTape, noGrad } from "../../src/engine/autograd.ts";
import { Rng } from "../../src/engine/rng.ts";
import { Tensor } from "../../src/engine/tensor.ts";

/** A tensor of normal(0, std) values from a seeded rng. */
export function randn(shape: number[], rng: Rng, std = 1, requiresGrad = true): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
  return t;
}

/**
 * Finite-difference check of an op's backward. L = Σ out·R for a fixed random R; the
 * analytic gradient comes from backward(out, R), the numeric one from central differences
 * (float64 accumulation of L, eps large enough that float32 rounding stays small).
 * Returns the worst error relative to max(1, |grad|) over the checked elements.
 */
export function gradCheck(
  f: () => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; samples?: number; seed?: number } = {},
): number {
  const eps = opts.eps ?? 1e-2;
  const samples = opts.samples ?? 24;
  const rng = new Rng(opts.seed ?? 7);
  for (const t of inputs) t.grad = null;
  clearTape();
  const out = f();
  const R = new Float32Array(out.size);
  for (let i = 0; i < R.length; i++) R[i] = rng.normal();
  backward(out, R);
  const lossAt = (): number =>
    noGrad(() => {
      const o = f();
      let s = 0;
      for (let i = 0; i < o.size; i++) s += o.data[i] * R[i];
      return s;
    });
  let worst = 0;
  for (const t of inputs) {
    const g = t.grad ?? new Float32Array(t.size);
    const n = Math.min(samples, t.size);
    for (let s = 0; s < n; s++) {
      const i = t.size <= samples ? s : rng.int(t.size);
      const orig = t.data[i];
      t.data[i] = orig + eps;
      const lp = lossAt();
      t.data[i] = orig - eps;
      const lm = lossAt();
      t.data[i] = orig;
      const num = (lp - lm) / (2 * eps);
      const err = Math.abs(num - g[i]) / Math.max(1, Math.abs(num));
      if (err > worst) worst = err;
    }
  }
  return worst;
}
