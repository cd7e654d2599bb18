import { checkSaeConfig, type SaeConfig, SparseAutoencoder, saeKernels, topkRows, transpose } from "./sae.ts";

/**
 * SAE training with hand-written gradients (the matmuls on the engine's kernels, the sparse
 * TopK parts as row loops), Adam, one step per batch of `batchSize` rows.
 *
 * TopK (Gao et al. 2024): loss = ‖x − x̂‖² (summed over dims, mean over rows, as sae_lens)
 * + auxKCoefficient · scale · ‖e − ê‖², the AuxK loss: e = x − x̂ (no gradient), ê the
 * reconstruction (no bias) from the top k_aux = dIn/2 pre-activations among dead latents
 * (not ReLU'd, as sae_lens), scale = min(dead / k_aux, 1) as sae_lens. A latent is dead
 * when it has not fired in the last `deadAfterTokens` training rows.
 *
 * ReLU ("standard"): loss = ‖x − x̂‖² + l1Coefficient · Σⱼ zⱼ. The decoder rows are kept at
 * unit norm for both architectures, so this plain L1 equals the decoder-norm-weighted L1 of
 * Anthropic's 2024 update; there is no dead-latent resampling.
 *
 * Both: b_dec starts at the mean of the first batch, W_enc = W_decᵀ at init, and each step
 * removes from a decoder row's gradient its component along the row, then renormalises
 * the rows after the Adam update. Deterministic for a seed and the same batches.
 */

export interface SaeTrainOptions {
  seed: number;
  /** Stop after this many steps (default: one pass over the batches). */
  steps?: number;
  learningRate: number;
  /** Rows per step; incoming batches are re-chunked to it (a short last chunk is a step too). */
  batchSize: number;
  /** ReLU: weight of the L1 penalty (default 5). */
  l1Coefficient?: number;
  /** TopK: weight of the AuxK loss (default 1/32). */
  auxKCoefficient?: number;
  /**
   * Rows without firing after which a latent counts as dead. Default: 10M (the paper's
   * value) scaled down to 5% of the run's rows when `steps` is given, at least one batch.
   */
  deadAfterTokens?: number;
  log?: (e: SaeTrainLogEntry) => void;
}

export interface SaeTrainLogEntry {
  step: number;
  /** Rows trained on so far, this step's included. */
  tokens: number;
  /** Mean squared error per element on this step's batch (before the update). */
  mse: number;
  explainedVariance: number;
  l0: number;
  deadShare: number;
  auxLoss?: number;
  l1?: number;
}

type Arr = Float32Array | Float64Array;

/** Training-form parameters: the encoder stored transposed, W_encᵀ [dSae, dIn], so each latent's row is contiguous. */
export interface SaeParams<A extends Arr = Float32Array> {
  weT: A;
  bEnc: A;
  wDec: A;
  bDec: A;
}

export interface SaeLossParts {
  loss: number;
  /** Σ (x − x̂)² over the batch. */
  sse: number;
  aux: number;
  l1: number;
  /** Mean non-zero latents per row. */
  l0: number;
  /** fired[j] = 1 when latent j was non-zero on some row. */
  fired: Uint8Array;
  /** x̂ − x (TopK only; the negative of AuxK's target). */
  error?: Arr;
}

/** C = op(A)·op(B) (+= when acc): the engine kernels for float32, a plain loop for float64. */
function gemm(
  a: Arr,
  b: Arr,
  c: Arr,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
  acc: boolean,
) {
  if (a instanceof Float32Array && b instanceof Float32Array && c instanceof Float32Array) {
    saeKernels().matmul(a, b, c, m, n, k, tA, tB, acc);
    return;
  }
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = acc ? c[i * n + j] + s : s;
    }
  }
}

function like(a: Arr, size: number): Arr {
  return a instanceof Float64Array ? new Float64Array(size) : new Float32Array(size);
}

/**
 * The training loss on n rows and, when `grads` is given, its gradient added into it
 * (exact for the piecewise-linear TopK / ReLU selection at x). `deadMask[j] = 1` marks the
 * dead latents for AuxK (null: none). Exported for the finite-difference test.
 */
export function saeLossAndGrads<A extends Arr>(
  cfg: SaeConfig,
  p: SaeParams<A>,
  x: A,
  n: number,
  opts: {
    deadMask: Uint8Array | null;
    auxKCoefficient: number;
    l1Coefficient: number;
    /** x̂ − x to use as the AuxK target's negative instead of this call's (the gradient check holds it fixed, as the stop-gradient does). */
    fixedError?: A;
  },
  grads: SaeParams<A> | null,
): SaeLossParts {
  const { dIn, dSae } = cfg;
  const apply = cfg.applyBDecToInput;
  let xc: Arr = x;
  if (apply) {
    xc = like(x, n * dIn);
    for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) xc[r * dIn + i] = x[r * dIn + i] - p.bDec[i];
  }
  const pre = like(x, n * dSae);
  for (let r = 0; r < n; r++) pre.set(p.bEnc, r * dSae);
  gemm(xc, p.weT, pre, n, dSae, dIn, false, true, true);
  const recon = like(x, n * dIn);
  for (let r = 0; r < n; r++) recon.set(p.bDec, r * dIn);
  const fired = new Uint8Array(dSae);
  let active = 0;
  const wDec = p.wDec;
  const weT = p.weT;

  // Encoder gradient for latent j on row r given dL/dpre = g (sparse paths).
  const encGrad = (r: number, j: number, g: number) => {
    if (grads === null || g === 0) return;
    grads.bEnc[j] += g;
    const gw = grads.weT;
    const o = j * dIn;
    const xo = r * dIn;
    for (let i = 0; i < dIn; i++) gw[o + i] += g * xc[xo + i];
    if (apply) for (let i = 0; i < dIn; i++) grads.bDec[i] -= g * weT[o + i];
  };

  // Gradients of c·‖e‖² through the sparse latents (idx, val: kk per row, index −1 masked).
  // The reconstruction loss (`relu`): latents at 0 are off and pass no gradient, and e reaches
  // b_dec directly; AuxK's dead latents are read as they are and its e has no b_dec term.
  const decoderBackward = (idx: Int32Array, val: Arr, kk: number, e: Arr, c: number, relu: boolean) => {
    if (grads === null) return;
    for (let r = 0; r < n; r++) {
      const ro = r * dIn;
      if (relu) for (let i = 0; i < dIn; i++) grads.bDec[i] += c * e[ro + i];
      for (let s = 0; s < kk; s++) {
        const j = idx[r * kk + s];
        if (j < 0) continue;
        const v = val[r * kk + s];
        if (relu && !(v > 0)) continue;
        const o = j * dIn;
        let g = 0;
        for (let i = 0; i < dIn; i++) {
          const d = c * e[ro + i];
          grads.wDec[o + i] += v * d;
          g += d * wDec[o + i];
        }
        encGrad(r, j, g);
      }
    }
  };

  if (cfg.architecture === "topk") {
    const k = cfg.k as number;
    const idx = new Int32Array(n * k);
    const val = like(x, n * k);
    topkRows(pre, n, dSae, k, idx, val);
    for (let r = 0; r < n; r++) {
      const ro = r * dIn;
      for (let s = 0; s < k; s++) {
        const v = val[r * k + s];
        if (!(v > 0)) continue;
        const j = idx[r * k + s];
        fired[j] = 1;
        active++;
        const o = j * dIn;
        for (let i = 0; i < dIn; i++) recon[ro + i] += v * wDec[o + i];
      }
    }
    const err = like(x, n * dIn);
    let sse = 0;
    for (let i = 0; i < err.length; i++) {
      err[i] = recon[i] - x[i];
      sse += err[i] * err[i];
    }
    let loss = sse / n;
    if (grads !== null) {
      decoderBackward(idx, val, k, err, 2 / n, true);
    }
    let aux = 0;
    const mask = opts.deadMask;
    let dead = 0;
    if (mask !== null) for (let j = 0; j < dSae; j++) dead += mask[j];
    const kAuxBase = Math.floor(dIn / 2);
    if (dead > 0 && opts.auxKCoefficient > 0 && kAuxBase > 0) {
      const scale = Math.min(dead / kAuxBase, 1);
      const kAux = Math.min(kAuxBase, dead);
      const aIdx = new Int32Array(n * kAux);
      const aVal = like(x, n * kAux);
      topkRows(pre, n, dSae, kAux, aIdx, aVal, mask, false);
      // ê − e = ê + err (e = x − x̂ is a constant of this loss).
      const diff = like(x, n * dIn);
      diff.set(opts.fixedError ?? err);
      for (let r = 0; r < n; r++) {
        const ro = r * dIn;
        for (let s = 0; s < kAux; s++) {
          const j = aIdx[r * kAux + s];
          if (j < 0) continue;
          const v = aVal[r * kAux + s];
          const o = j * dIn;
          for (let i = 0; i < dIn; i++) diff[ro + i] += v * wDec[o + i];
        }
      }
      let asse = 0;
      for (let i = 0; i < diff.length; i++) asse += diff[i] * diff[i];
      const w = opts.auxKCoefficient * scale;
      aux = (w * asse) / n;
      loss += aux;
      // AuxK reads the dead latents' pre-activations as they are (no ReLU in its path).
      if (grads !== null) decoderBackward(aIdx, aVal, kAux, diff, (2 * w) / n, false);
    }
    return { loss, sse, aux, l1: 0, l0: active / n, fired, error: err };
  }

  // ReLU + L1: dense, on the kernels.
  const z = pre;
  let l1 = 0;
  for (let r = 0; r < n; r++) {
    const o = r * dSae;
    for (let j = 0; j < dSae; j++) {
      const v = z[o + j];
      if (v > 0) {
        fired[j] = 1;
        active++;
        l1 += v;
      } else z[o + j] = 0;
    }
  }
  l1 /= n;
  gemm(z, wDec, recon, n, dIn, dSae, false, false, true);
  const err = like(x, n * dIn);
  let sse = 0;
  for (let i = 0; i < err.length; i++) {
    err[i] = recon[i] - x[i];
    sse += err[i] * err[i];
  }
  const loss = sse / n + opts.l1Coefficient * l1;
  if (grads !== null) {
    const c = 2 / n;
    for (let i = 0; i < err.length; i++) err[i] *= c; // err is now dL/dx̂
    for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) grads.bDec[i] += err[r * dIn + i];
    gemm(z, err, grads.wDec, dSae, dIn, n, true, false, true);
    const dPre = like(x, n * dSae);
    gemm(err, wDec, dPre, n, dSae, dIn, false, true, false);
    const l1g = opts.l1Coefficient / n;
    for (let r = 0; r < n; r++) {
      const o = r * dSae;
      for (let j = 0; j < dSae; j++) {
        if (z[o + j] > 0) {
          dPre[o + j] += l1g;
          grads.bEnc[j] += dPre[o + j];
        } else dPre[o + j] = 0;
      }
    }
    gemm(dPre, xc, grads.weT, dSae, dIn, n, true, false, true);
    if (apply) {
      const dxc = like(x, n * dIn);
      gemm(dPre, weT, dxc, n, dIn, dSae, false, false, false);
      for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) grads.bDec[i] -= dxc[r * dIn + i];
    }
  }
  return { loss, sse, aux: 0, l1, l0: active / n, fired };
}

/** Removes from each decoder-row gradient its component along the (unit) row. */
export function projectDecoderGrad(wDec: Arr, gDec: Arr, dSae: number, dIn: number): void {
  for (let j = 0; j < dSae; j++) {
    const o = j * dIn;
    let dot = 0;
    let nn = 0;
    for (let i = 0; i < dIn; i++) {
      dot += gDec[o + i] * wDec[o + i];
      nn += wDec[o + i] * wDec[o + i];
    }
    if (nn === 0) continue;
    const c = dot / nn;
    for (let i = 0; i < dIn; i++) gDec[o + i] -= c * wDec[o + i];
  }
}

/** Scales each decoder row to unit norm (zero rows stay zero). */
export function normalizeDecoderRows(wDec: Arr, dSae: number, dIn: number): void {
  for (let j = 0; j < dSae; j++) {
    const o = j * dIn;
    let nn = 0;
    for (let i = 0; i < dIn; i++) nn += wDec[o + i] * wDec[o + i];
    if (nn === 0) continue;
    const inv = 1 / Math.sqrt(nn);
    for (let i = 0; i < dIn; i++) wDec[o + i] *= inv;
  }
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  constructor(size: number) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }
  step(w: Float32Array, g: Float32Array, lr: number, t: number): void {
    const { m, v } = this;
    const c1 = 1 - BETA1 ** t;
    const c2 = 1 - BETA2 ** t;
    const a = lr / c1;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i];
      m[i] = BETA1 * m[i] + (1 - BETA1) * gi;
      v[i] = BETA2 * v[i] + (1 - BETA2) * gi * gi;
      w[i] -= (a * m[i]) / (Math.sqrt(v[i] / c2) + EPS);
    }
  }
}

/** Trains an SAE of `cfg` on batches of rows × dIn activations. */
export async function trainSae(
  cfg: SaeConfig,
  batches: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  opts: SaeTrainOptions,
): Promise<{ sae: SparseAutoencoder; log: SaeTrainLogEntry[] }> {
  checkSaeConfig(cfg);
  const { dIn, dSae } = cfg;
  const B = opts.batchSize;
  if (!Number.isInteger(B) || B < 1)
    throw new Error(`trainSae: batchSize must be a positive integer, got ${B}`);
  if (!(opts.learningRate > 0))
    throw new Error(`trainSae: learningRate must be positive, got ${opts.learningRate}`);
  if (opts.steps !== undefined && (!Number.isInteger(opts.steps) || opts.steps < 1))
    throw new Error(`trainSae: steps must be a positive integer, got ${opts.steps}`);
  const deadAfter =
    opts.deadAfterTokens ??
    (opts.steps !== undefined
      ? Math.max(B, Math.min(10_000_000, Math.floor(0.05 * opts.steps * B)))
      : 10_000_000);
  const lossOpts = {
    deadMask: null as Uint8Array | null,
    auxKCoefficient: opts.auxKCoefficient ?? 1 / 32,
    l1Coefficient: opts.l1Coefficient ?? 5,
  };

  const init = SparseAutoencoder.init(cfg, opts.seed);
  const p: SaeParams = {
    weT: transpose(init.wEnc, dIn, dSae),
    bEnc: init.bEnc,
    wDec: init.wDec,
    bDec: init.bDec,
  };
  const g: SaeParams = {
    weT: new Float32Array(dSae * dIn),
    bEnc: new Float32Array(dSae),
    wDec: new Float32Array(dSae * dIn),
    bDec: new Float32Array(dIn),
  };
  const keys = ["weT", "bEnc", "wDec", "bDec"] as const;
  const adam = Object.fromEntries(keys.map((key) => [key, new Adam(p[key].length)])) as Record<
    (typeof keys)[number],
    Adam
  >;
  const lastFired = new Float64Array(dSae);
  const deadMask = new Uint8Array(dSae);
  const log: SaeTrainLogEntry[] = [];
  let step = 0;
  let tokens = 0;

  const trainStep = (x: Float32Array, n: number) => {
    if (step === 0) {
      // b_dec := the first batch's mean, so the pre-encoder bias centres the data.
      p.bDec.fill(0);
      for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) p.bDec[i] += x[r * dIn + i] / n;
    }
    let dead = 0;
    for (let j = 0; j < dSae; j++) {
      deadMask[j] = tokens - lastFired[j] >= deadAfter ? 1 : 0;
      dead += deadMask[j];
    }
    lossOpts.deadMask = dead > 0 ? deadMask : null;
    for (const key of keys) g[key].fill(0);
    const parts = saeLossAndGrads(cfg, p, x, n, lossOpts, g);
    projectDecoderGrad(p.wDec, g.wDec, dSae, dIn);
    step++;
    for (const key of keys) adam[key].step(p[key], g[key], opts.learningRate, step);
    normalizeDecoderRows(p.wDec, dSae, dIn);
    tokens += n;
    let deadAfterStep = 0;
    for (let j = 0; j < dSae; j++) {
      if (parts.fired[j]) lastFired[j] = tokens;
      if (tokens - lastFired[j] >= deadAfter) deadAfterStep++;
    }
    const mean = new Float64Array(dIn);
    for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) mean[i] += x[r * dIn + i] / n;
    let sst = 0;
    for (let r = 0; r < n; r++)
      for (let i = 0; i < dIn; i++) {
        const c = x[r * dIn + i] - mean[i];
        sst += c * c;
      }
    const entry: SaeTrainLogEntry = {
      step,
      tokens,
      mse: parts.sse / (n * dIn),
      explainedVariance: sst > 0 ? 1 - parts.sse / sst : 0,
      l0: parts.l0,
      deadShare: deadAfterStep / dSae,
    };
    if (cfg.architecture === "topk") entry.auxLoss = parts.aux;
    else entry.l1 = parts.l1;
    log.push(entry);
    opts.log?.(entry);
  };

  const buf = new Float32Array(B * dIn);
  let fill = 0;
  const done = () => opts.steps !== undefined && step >= opts.steps;
  for await (const batch of batches as AsyncIterable<Float32Array>) {
    if (done()) break;
    if (batch.length % dIn !== 0)
      throw new Error(`trainSae: a batch has ${batch.length} values, not a multiple of dIn ${dIn}`);
    let off = 0;
    while (off < batch.length && !done()) {
      const take = Math.min(batch.length - off, (B - fill) * dIn);
      buf.set(batch.subarray(off, off + take), fill * dIn);
      off += take;
      fill += take / dIn;
      if (fill === B) {
        trainStep(buf, B);
        fill = 0;
      }
    }
  }
  if (fill > 0 && !done()) trainStep(buf.slice(0, fill * dIn), fill);
  if (step === 0) throw new Error("trainSae: no activation rows to train on");

  const sae = new SparseAutoencoder(
    { ...cfg },
    transpose(p.weT, dSae, dIn),
    p.bEnc.slice(),
    p.wDec.slice(),
    p.bDec.slice(),
  );
  return { sae, log };
}
