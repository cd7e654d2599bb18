import { needsGrad, noGrad, record } from "./autograd.ts";
import { dropout, scale } from "./ops/elementwise.ts";
import { linear, matmul } from "./ops/matmul.ts";
import type { Rng } from "./rng.ts";
import { Tensor } from "./tensor.ts";

/** The projection modules LoRA may target (PEFT's names). */
export const LORA_TARGETS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Projections to adapt (default q/k/v/o). */
  targets?: LoraTarget[];
  /** Block indices to adapt (default all). */
  layers?: number[];
  dropout?: number;
  /** rsLoRA: scale by alpha/√r instead of alpha/r. */
  rslora?: boolean;
  seed?: number;
}

/** Where a projection lives in HF names, e.g. model.layers.3.self_attn.q_proj. */
export function modulePath(layer: number, target: LoraTarget): string {
  const group =
    target.endsWith("_proj") && ["gate_proj", "up_proj", "down_proj"].includes(target) ? "mlp" : "self_attn";
  return `model.layers.${layer}.${group}.${target}`;
}

/**
 * One low-rank adapter on a linear W [out, in]: y = x·Wᵀ + s · dropout(x)·Aᵀ·Bᵀ with
 * A [r, in] (Kaiming-uniform as PEFT), B [out, r] (zeros), s = alpha/r (or alpha/√r).
 */
export class LoraAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly scaling: number;
  readonly dropout: number;

  constructor(A: Tensor, B: Tensor, scaling: number, dropoutP = 0) {
    if (A.shape[0] !== B.shape[1]) throw new Error(`LoRA A [${A.shape}] and B [${B.shape}] ranks differ`);
    this.A = A;
    this.B = B;
    this.scaling = scaling;
    this.dropout = dropoutP;
  }

  static init(
    inF: number,
    outF: number,
    rank: number,
    scaling: number,
    dropoutP: number,
    rng: Rng,
  ): LoraAdapter {
    // PEFT: kaiming_uniform_(a=√5) on A, i.e. U(−1/√in, 1/√in); B starts at zero so the
    // adapted model equals the base model.
    const bound = 1 / Math.sqrt(inF);
    const A = Tensor.zeros([rank, inF], true);
    for (let i = 0; i < A.size; i++) A.data[i] = (2 * rng.next() - 1) * bound;
    const B = Tensor.zeros([outF, rank], true);
    return new LoraAdapter(A, B, scaling, dropoutP);
  }

  /** The low-rank term s · B·A·x for input x (train: apply dropout with rng). */
  delta(x: Tensor, train: boolean, rng: Rng | null): Tensor {
    const xin = train && this.dropout > 0 && rng ? dropout(x, this.dropout, rng) : x;
    return scale(linear(linear(xin, this.A), this.B), this.scaling);
  }

  /**
   * Adds the delta of this adapter to a base-layer output, in base's buffer: `base` is
   * consumed (the model passes the projection it just made; nothing reads it after). The
   * same floats as add(base, delta(x)), without two more [rows, out] activations per
   * adapted projection kept for the backward.
   */
  apply(base: Tensor, x: Tensor, train: boolean, rng: Rng | null): Tensor {
    const xin = train && this.dropout > 0 && rng ? dropout(x, this.dropout, rng) : x;
    return addScaledInto(base, linear(linear(xin, this.A), this.B), this.scaling);
  }

  /** ΔW = s · B·A, [out, in]. */
  deltaWeight(): Float32Array {
    return noGrad(() => scale(matmul(this.B, this.A), this.scaling).data);
  }
}

/** base + s·v written into base's buffer (differentiable in both; base's old values are gone). */
function addScaledInto(base: Tensor, v: Tensor, s: number): Tensor {
  if (base.size !== v.size)
    throw new Error(`LoRA: delta [${v.shape}] does not match the output [${base.shape}]`);
  const grad = needsGrad(base, v);
  const y = base.data;
  const vd = v.data;
  // As scale then add: the scaled delta is rounded to float32 before the sum.
  for (let i = 0; i < y.length; i++) y[i] = y[i] + Math.fround(vd[i] * s);
  const out = new Tensor(y, base.shape, grad);
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      if (v.requiresGrad) {
        const dv = v.ensureGrad();
        for (let i = 0; i < dv.length; i++) dv[i] += dy[i] * s;
      }
      // base takes dy's buffer when it has no gradient yet (as add does).
      if (base.requiresGrad) {
        if (base.grad === null) base.grad = dy;
        else {
          const db = base.grad;
          for (let i = 0; i < db.length; i++) db[i] += dy[i];
        }
      }
    });
  }
  return out;
}

export function loraScaling(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}
