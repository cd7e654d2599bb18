import type { Tensor } from "./tensor.ts";

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/**
 * AdamW exactly as torch.optim.AdamW (non-amsgrad, non-fused): decoupled decay
 * p ← p·(1 − lr·wd), then p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + eps). Moments are
 * float32 like torch's; the per-element arithmetic runs in double precision.
 */
export class AdamW {
  readonly params: [string, Tensor][];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Optimizer steps taken. */
  step = 0;
  readonly m: Map<string, Float32Array> = new Map();
  readonly v: Map<string, Float32Array> = new Map();

  constructor(params: [string, Tensor][], opts: AdamWOptions) {
    this.params = params;
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const [name, t] of params) {
      if (this.m.has(name)) throw new Error(`AdamW: parameter "${name}" given twice`);
      this.m.set(name, new Float32Array(t.size));
      this.v.set(name, new Float32Array(t.size));
    }
  }

  /** One update from the current .grad of every parameter (parameters without a grad are skipped). */
  update(): void {
    this.step++;
    const t = this.step;
    const { beta1: b1, beta2: b2, eps, lr } = this;
    const stepSize = lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const decay = 1 - lr * this.weightDecay;
    for (const [name, p] of this.params) {
      const g = p.grad;
      if (g === null) continue;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const w = p.data;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
      }
    }
  }

  zeroGrad(): void {
    for (const [, p] of this.params) p.zeroGrad();
  }
}

/**
 * Scales all gradients so their global L2 norm is at most maxNorm (torch's
 * clip_grad_norm_: coef = maxNorm / (norm + 1e-6), clamped to 1). Returns the norm before
 * clipping.
 */
export function clipGradNorm(params: [string, Tensor][], maxNorm: number): number {
  let ss = 0;
  for (const [, p] of params) {
    const g = p.grad;
    if (g === null) continue;
    for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  }
  const norm = Math.sqrt(ss);
  if (Number.isFinite(maxNorm) && maxNorm > 0) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (coef < 1) {
      for (const [, p] of params) {
        const g = p.grad;
        if (g === null) continue;
        for (let i = 0; i < g.length; i++) g[i] *= coef;
      }
    }
  }
  return norm;
}

export interface LrSchedule {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor of the cosine as a fraction of the peak (0 = decay to zero, as HF). */
  minRatio?: number;
}

/**
 * Linear warmup then cosine decay to minRatio·peak (HF's cosine schedule, but warmup
 * counts the step being taken, as nanoGPT, so the first step does not have lr 0).
 * `step` counts optimizer steps from 0.
 */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  const minRatio = s.minRatio ?? 0;
  const cos = 0.5 * (1 + Math.cos(Math.PI * progress));
  return s.peak * (minRatio + (1 - minRatio) * cos);
}
