import { getKernels } from "../kernels/index.ts";
import type { MatmulKernels } from "../kernels/types.ts";
import { Rng } from "../rng.ts";

/**
 * A sparse autoencoder over one hook point's activations, in SAELens' parameter layout
 * (W_enc [dIn, dSae], b_enc, W_dec [dSae, dIn], b_dec) so that saelens.ts reads and writes
 * it without transposes.
 *
 *   z = act(( x − b_dec·applyBDecToInput ) · W_enc + b_enc),   x̂ = z · W_dec + b_dec
 *
 * act is ReLU ("relu", SAELens "standard") or TopK: keep the k largest pre-activations of
 * each row, then ReLU them (sae_lens' TopK does topk first and relu on the kept values, so
 * a row may have fewer than k non-zeros when some kept pre-activations are negative).
 * Ties are broken towards the lower latent index, deterministically.
 */
export type SaeArchitecture = "topk" | "relu";

export interface SaeConfig {
  architecture: SaeArchitecture;
  dIn: number;
  dSae: number;
  /** Active latents per row (topk only). */
  k?: number;
  /** Engine hook point (TransformerLens names), e.g. "blocks.1.hook_resid_post". */
  hookName: string;
  hookLayer: number;
  modelName?: string;
  /** Pre-encoder bias: encode(x − b_dec). */
  applyBDecToInput: boolean;
  /** Only "none" is implemented; loading refuses the other SAELens normalisations. */
  normalizeActivations: "none";
  /** SAELens cfg keys kept verbatim (context_size, dataset_path, ...). */
  extra?: Record<string, unknown>;
}

let kernels: MatmulKernels | null = null;
/** The engine's matmul kernels (shared, chosen once). */
export function saeKernels(): MatmulKernels {
  if (kernels === null) kernels = getKernels();
  return kernels;
}

/** Throws on a config this class cannot run (message names the field). */
export function checkSaeConfig(cfg: SaeConfig, where = "SAE config"): void {
  const posInt = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v > 0;
  if (cfg.architecture !== "topk" && cfg.architecture !== "relu")
    throw new Error(
      `${where}: architecture must be "topk" or "relu", got ${JSON.stringify(cfg.architecture)}`,
    );
  if (!posInt(cfg.dIn)) throw new Error(`${where}: dIn must be a positive integer, got ${cfg.dIn}`);
  if (!posInt(cfg.dSae)) throw new Error(`${where}: dSae must be a positive integer, got ${cfg.dSae}`);
  if (cfg.architecture === "topk") {
    if (!posInt(cfg.k) || (cfg.k as number) > cfg.dSae)
      throw new Error(`${where}: k must be an integer in 1..dSae (${cfg.dSae}) for topk, got ${cfg.k}`);
  }
  if (cfg.normalizeActivations !== "none")
    throw new Error(
      `${where}: normalizeActivations must be "none", got ${JSON.stringify(cfg.normalizeActivations)}`,
    );
  if (typeof cfg.hookName !== "string" || cfg.hookName === "")
    throw new Error(`${where}: hookName must be a non-empty string`);
  if (!Number.isInteger(cfg.hookLayer) || cfg.hookLayer < 0)
    throw new Error(`${where}: hookLayer must be a non-negative integer, got ${cfg.hookLayer}`);
}

export class SparseAutoencoder {
  readonly cfg: SaeConfig;
  /** [dIn, dSae] row-major (SAELens W_enc). */
  readonly wEnc: Float32Array;
  /** [dSae] */
  readonly bEnc: Float32Array;
  /** [dSae, dIn] (SAELens W_dec). */
  readonly wDec: Float32Array;
  /** [dIn] */
  readonly bDec: Float32Array;

  constructor(
    cfg: SaeConfig,
    wEnc: Float32Array,
    bEnc: Float32Array,
    wDec: Float32Array,
    bDec: Float32Array,
  ) {
    checkSaeConfig(cfg);
    const { dIn, dSae } = cfg;
    const want: [string, Float32Array, number][] = [
      ["W_enc", wEnc, dIn * dSae],
      ["b_enc", bEnc, dSae],
      ["W_dec", wDec, dSae * dIn],
      ["b_dec", bDec, dIn],
    ];
    for (const [name, a, size] of want)
      if (a.length !== size) throw new Error(`SAE ${name} has ${a.length} elements, expected ${size}`);
    this.cfg = cfg;
    this.wEnc = wEnc;
    this.bEnc = bEnc;
    this.wDec = wDec;
    this.bDec = bDec;
  }

  /**
   * A fresh SAE: decoder rows random unit vectors, W_enc = W_decᵀ (Gao et al. 2024), zero
   * biases (training sets b_dec from the first batch).
   */
  static init(cfg: SaeConfig, seed: number): SparseAutoencoder {
    checkSaeConfig(cfg);
    const { dIn, dSae } = cfg;
    const rng = new Rng(seed);
    const wDec = new Float32Array(dSae * dIn);
    for (let j = 0; j < dSae; j++) {
      const o = j * dIn;
      let ss = 0;
      for (let i = 0; i < dIn; i++) {
        const v = rng.normal();
        wDec[o + i] = v;
        ss += v * v;
      }
      const inv = 1 / Math.sqrt(ss);
      for (let i = 0; i < dIn; i++) wDec[o + i] *= inv;
    }
    return new SparseAutoencoder(
      { ...cfg },
      transpose(wDec, dSae, dIn),
      new Float32Array(dSae),
      wDec,
      new Float32Array(dIn),
    );
  }

  get dIn(): number {
    return this.cfg.dIn;
  }

  get dSae(): number {
    return this.cfg.dSae;
  }

  /** Pre-activations n×dSae: (x − b_dec) · W_enc + b_enc. */
  preActivations(x: Float32Array, n: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (x.length !== n * dIn) throw new Error(`SAE encode: ${x.length} values for ${n} rows of ${dIn}`);
    let xc = x;
    if (this.cfg.applyBDecToInput) {
      xc = new Float32Array(x.length);
      const b = this.bDec;
      for (let r = 0; r < n; r++) {
        const o = r * dIn;
        for (let i = 0; i < dIn; i++) xc[o + i] = x[o + i] - b[i];
      }
    }
    const pre = new Float32Array(n * dSae);
    for (let r = 0; r < n; r++) pre.set(this.bEnc, r * dSae);
    if (n > 0) saeKernels().matmul(xc, this.wEnc, pre, n, dSae, dIn, false, false, true);
    return pre;
  }

  /** n×dIn → n×dSae latent activations (>= 0). */
  encode(x: Float32Array, n: number): Float32Array {
    const pre = this.preActivations(x, n);
    const { dSae } = this.cfg;
    if (this.cfg.architecture === "relu") {
      for (let i = 0; i < pre.length; i++) if (!(pre[i] > 0)) pre[i] = 0;
      return pre;
    }
    const k = this.cfg.k as number;
    const idx = new Int32Array(n * k);
    const val = new Float32Array(n * k);
    topkRows(pre, n, dSae, k, idx, val);
    const z = new Float32Array(n * dSae);
    for (let r = 0; r < n; r++) {
      for (let s = 0; s < k; s++) {
        const v = val[r * k + s];
        if (v > 0) z[r * dSae + idx[r * k + s]] = v;
      }
    }
    return z;
  }

  /** n×dSae → n×dIn: z · W_dec + b_dec. */
  decode(z: Float32Array, n: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (z.length !== n * dSae) throw new Error(`SAE decode: ${z.length} values for ${n} rows of ${dSae}`);
    const out = new Float32Array(n * dIn);
    for (let r = 0; r < n; r++) out.set(this.bDec, r * dIn);
    if (n > 0) saeKernels().matmul(z, this.wDec, out, n, dIn, dSae, false, false, true);
    return out;
  }

  /** Row `latent` of W_dec (a copy; unit norm for the SAEs trained here). */
  decoderDirection(latent: number): Float32Array {
    const { dIn, dSae } = this.cfg;
    if (!Number.isInteger(latent) || latent < 0 || latent >= dSae)
      throw new Error(`latent ${latent} is outside 0..${dSae - 1}`);
    return this.wDec.slice(latent * dIn, (latent + 1) * dIn);
  }
}

/** out[j, i] = a[i, j] for a [rows, cols]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = a[o + j];
  }
  return out;
}

/**
 * For each of n rows of pre [n, d], the k largest entries (ties → lower index) as indices
 * and ReLU'd values, in no particular order. A min-heap of size k keeps it O(d log k) per
 * row. `mask`, when given, restricts the choice to latents with mask[j] = 1
 * (fewer than k candidates leave the remaining slots as index -1, value 0). `relu: false`
 * keeps negative values (the AuxK selection in sae_lens does not ReLU).
 */
export function topkRows(
  pre: Float32Array | Float64Array,
  n: number,
  d: number,
  k: number,
  outIdx: Int32Array,
  outVal: Float32Array | Float64Array,
  mask: Uint8Array | null = null,
  relu = true,
): void {
  const hv = new Float64Array(k);
  const hi = new Int32Array(k);
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let size = 0;
    for (let j = 0; j < d; j++) {
      if (mask !== null && mask[j] === 0) continue;
      const v = pre[o + j];
      if (size < k) {
        // Sift up: the root is the worst kept entry (smallest value, then largest index).
        let c = size++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (worse(v, j, hv[p], hi[p])) {
            hv[c] = hv[p];
            hi[c] = hi[p];
            c = p;
          } else break;
        }
        hv[c] = v;
        hi[c] = j;
      } else if (v > hv[0]) {
        // Later indices only displace strictly smaller values, so ties keep the lower index.
        let c = 0;
        for (;;) {
          const l = 2 * c + 1;
          if (l >= k) break;
          const rr = l + 1;
          const m = rr < k && worse(hv[rr], hi[rr], hv[l], hi[l]) ? rr : l;
          if (worse(hv[m], hi[m], v, j)) {
            hv[c] = hv[m];
            hi[c] = hi[m];
            c = m;
          } else break;
        }
        hv[c] = v;
        hi[c] = j;
      }
    }
    const base = r * k;
    for (let s = 0; s < k; s++) {
      if (s < size) {
        const v = hv[s];
        outIdx[base + s] = hi[s];
        outVal[base + s] = relu && !(v > 0) ? 0 : v;
      } else {
        outIdx[base + s] = -1;
        outVal[base + s] = 0;
      }
    }
  }
}

/** Heap order: (va, ia) ranks below (vb, ib) — smaller value, or equal value and larger index. */
function worse(va: number, ia: number, vb: number, ib: number): boolean {
  return va < vb || (va === vb && ia > ib);
}
