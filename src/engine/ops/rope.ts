import { needsGrad, record } from "../autograd.ts";
import { Tensor } from "../tensor.ts";

export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/**
 * cos/sin tables for rotary embeddings, HF convention (rotate_half: the two halves of
 * each head are paired, inv_freq = theta^(-2i/d)), computed once per model and grown on
 * demand.
 */
export class RopeTable {
  readonly headDim: number;
  readonly invFreq: Float32Array;
  cos: Float32Array = new Float32Array(0);
  sin: Float32Array = new Float32Array(0);
  length = 0;

  constructor(headDim: number, theta: number, scaling?: RopeScaling | null) {
    if (headDim % 2 !== 0) throw new Error(`rotary embeddings need an even head dimension, got ${headDim}`);
    this.headDim = headDim;
    const half = headDim / 2;
    this.invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = 1 / theta ** ((2 * i) / headDim);
    const kind = scaling?.rope_type ?? scaling?.type;
    if (scaling && kind && kind !== "default") {
      if (kind === "linear") {
        for (let i = 0; i < half; i++) this.invFreq[i] /= scaling.factor ?? 1;
      } else if (kind === "llama3") {
        // Llama 3.1+ frequency-dependent scaling (transformers' _compute_llama3_parameters).
        const factor = scaling.factor ?? 8;
        const low = scaling.low_freq_factor ?? 1;
        const high = scaling.high_freq_factor ?? 4;
        const oldCtx = scaling.original_max_position_embeddings ?? 8192;
        const lowWavelen = oldCtx / low;
        const highWavelen = oldCtx / high;
        for (let i = 0; i < half; i++) {
          const f = this.invFreq[i];
          const wavelen = (2 * Math.PI) / f;
          if (wavelen > lowWavelen) this.invFreq[i] = f / factor;
          else if (wavelen >= highWavelen) {
            const smooth = (oldCtx / wavelen - low) / (high - low);
            this.invFreq[i] = (1 - smooth) * (f / factor) + smooth * f;
          }
        }
      } else {
        throw new Error(`unsupported rope_scaling type "${kind}" (supported: default, linear, llama3)`);
      }
    }
  }

  ensure(length: number): void {
    if (length <= this.length) return;
    const n = Math.max(length, this.length * 2, 64);
    const half = this.headDim / 2;
    this.cos = new Float32Array(n * half);
    this.sin = new Float32Array(n * half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * this.invFreq[i]);
        this.cos[p * half + i] = Math.cos(a);
        this.sin[p * half + i] = Math.sin(a);
      }
    }
    this.length = n;
  }
}

/**
 * Applies rotary embeddings to x laid out [B, T, heads * headDim]; token t of every
 * batch row sits at position pos0 + t.
 */
export function rope(x: Tensor, table: RopeTable, T: number, heads: number, pos0: number): Tensor {
  const D = table.headDim;
  if (x.cols !== heads * D) throw new Error(`rope: rows have ${x.cols} features, expected ${heads}×${D}`);
  const rows = x.rows;
  if (rows % T !== 0) throw new Error(`rope: ${rows} rows is not a multiple of sequence length ${T}`);
  table.ensure(pos0 + T);
  const grad = needsGrad(x);
  const out = new Tensor(new Float32Array(x.size), x.shape, grad);
  rotate(x.data, out.data, table, rows, T, heads, pos0, 1);
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      // The inverse rotation (sin → -sin), accumulated into dx.
      rotate(dy, x.ensureGrad(), table, rows, T, heads, pos0, -1, true);
    });
  }
  return out;
}

function rotate(
  src: Float32Array,
  dst: Float32Array,
  table: RopeTable,
  rows: number,
  T: number,
  heads: number,
  pos0: number,
  sign: number,
  accumulate = false,
): void {
  const D = table.headDim;
  const half = D / 2;
  const cosT = table.cos;
  const sinT = table.sin;
  for (let r = 0; r < rows; r++) {
    const p = pos0 + (r % T);
    const tb = p * half;
    for (let h = 0; h < heads; h++) {
      const o = r * heads * D + h * D;
      if (accumulate) {
        for (let i = 0; i < half; i++) {
          const c = cosT[tb + i];
          const s = sign * sinT[tb + i];
          const x1 = src[o + i];
          const x2 = src[o + i + half];
          // Rounded to float32 before the sum, as a rotated copy added in would be.
          dst[o + i] += Math.fround(x1 * c - x2 * s);
          dst[o + i + half] += Math.fround(x2 * c + x1 * s);
        }
      } else {
        for (let i = 0; i < half; i++) {
          const c = cosT[tb + i];
          const s = sign * sinT[tb + i];
          const x1 = src[o + i];
          const x2 = src[o + i + half];
          dst[o + i] = x1 * c - x2 * s;
          dst[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}
