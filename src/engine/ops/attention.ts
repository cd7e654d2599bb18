import { needsGrad, record } from "../autograd.ts";
import { getKernels } from "../kernels/index.ts";
import type { KvCache } from "../kv-cache.ts";
import { Tensor } from "../tensor.ts";

export interface AttentionShape {
  batch: number;
  /** New positions in this call. */
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /**
   * Recompute the attention probabilities in the backward instead of keeping them
   * (B·heads·T² floats a layer). Default: only when keeping them would exceed 64 MB.
   */
  recompute?: boolean;
}

/** Above this many kept probabilities per layer (64 MB), the backward recomputes them. */
const KEEP_PROBS_MAX = 1 << 24;

/**
 * Causal multi-head attention with grouped-query heads (query head h reads kv head
 * h / (heads / kvHeads), as HF's repeat_kv). q is [B, T, heads·D], k and v are
 * [B, T, kvHeads·D], all already rotated. With a cache, the new keys/values are appended
 * at `cache.length` of `layer` and queries attend to every stored position (no gradient;
 * the caller advances cache.length after the last layer). Every matmul is a kernel call
 * on contiguous per-head blocks.
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  s: AttentionShape,
  cache?: { cache: KvCache; layer: number },
): Tensor {
  const { batch: B, seq: T, heads: H, kvHeads: KH, headDim: D } = s;
  if (H % KH !== 0) throw new Error(`attention: ${H} heads is not a multiple of ${KH} kv heads`);
  if (q.size !== B * T * H * D)
    throw new Error(`attention: q has ${q.size} elements, expected ${B}×${T}×${H}×${D}`);
  if (k.size !== B * T * KH * D || v.size !== k.size) {
    throw new Error(`attention: k/v have ${k.size}/${v.size} elements, expected ${B}×${T}×${KH}×${D}`);
  }
  const kern = getKernels();
  // The kernels' softmax (WASM, vector exp) when they have one; same result within rounding.
  const softmax = (x: Float32Array, rows: number, cols: number, off: number, sc: number) =>
    kern.causalSoftmax ? kern.causalSoftmax(x, rows, cols, off, sc) : causalSoftmax(x, rows, cols, off, sc);
  const group = H / KH;
  const scale = 1 / Math.sqrt(D);
  const grad = needsGrad(q, k, v);
  if (cache && grad)
    throw new Error("attention with a KV cache does not record gradients; run it under noGrad()");

  // Keys/values in head-major layout, either the cache or a fresh buffer.
  let kh: Float32Array;
  let vh: Float32Array;
  let stride: number;
  let offset: number;
  if (cache) {
    const c = cache.cache;
    c.reserve(c.length + T);
    kh = c.k[cache.layer];
    vh = c.v[cache.layer];
    stride = c.capacity;
    offset = c.length;
  } else {
    kh = new Float32Array(B * KH * T * D);
    vh = new Float32Array(B * KH * T * D);
    stride = T;
    offset = 0;
  }
  toHeadMajor(k.data, kh, B, T, KH, D, stride, offset);
  toHeadMajor(v.data, vh, B, T, KH, D, stride, offset);
  const Tk = offset + T;

  const qh = new Float32Array(B * H * T * D);
  toHeadMajor(q.data, qh, B, T, H, D, T, 0);
  const oh = new Float32Array(B * H * T * D);
  // Attention probabilities; kept for the backward when recording (unless recomputed).
  const recompute = grad && (s.recompute ?? B * H * T * Tk > KEEP_PROBS_MAX);
  const keep = grad && !recompute;
  const probs = new Float32Array((keep ? B * H : 1) * T * Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      const qOff = (b * H + h) * T * D;
      const kvOff = (b * KH + g) * stride * D;
      const p = keep ? probs.subarray((b * H + h) * T * Tk, (b * H + h + 1) * T * Tk) : probs;
      kern.matmul(
        qh.subarray(qOff, qOff + T * D),
        kh.subarray(kvOff, kvOff + Tk * D),
        p,
        T,
        Tk,
        D,
        false,
        true,
        false,
      );
      softmax(p, T, Tk, offset, scale);
      kern.matmul(
        p,
        vh.subarray(kvOff, kvOff + Tk * D),
        oh.subarray(qOff, qOff + T * D),
        T,
        D,
        Tk,
        false,
        false,
        false,
      );
    }
  }
  const out = new Tensor(new Float32Array(B * T * H * D), q.shape, grad);
  fromHeadMajor(oh, out.data, B, T, H, D, T, 0, false);

  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const doh = new Float32Array(B * H * T * D);
      toHeadMajor(dy, doh, B, T, H, D, T, 0);
      const dqh = new Float32Array(B * H * T * D);
      const dkh = new Float32Array(B * KH * T * D);
      const dvh = new Float32Array(B * KH * T * D);
      const dp = new Float32Array(T * T);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / group);
          const qOff = (b * H + h) * T * D;
          const kvOff = (b * KH + g) * T * D;
          const dO = doh.subarray(qOff, qOff + T * D);
          const kBlock = kh.subarray(kvOff, kvOff + T * D);
          const vBlock = vh.subarray(kvOff, kvOff + T * D);
          let p: Float32Array;
          if (keep) p = probs.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
          else {
            // Recompute P = softmax(scale · Q·Kᵀ) for this head (the forward's exact steps).
            p = probs;
            kern.matmul(qh.subarray(qOff, qOff + T * D), kBlock, p, T, T, D, false, true, false);
            softmax(p, T, T, 0, scale);
          }
          // dP = dO · Vᵀ ; dV += Pᵀ · dO
          kern.matmul(dO, vBlock, dp, T, T, D, false, true, false);
          kern.matmul(p, dO, dvh.subarray(kvOff, kvOff + T * D), T, D, T, true, false, true);
          // dS = P ∘ (dP − rowsum(dP ∘ P)) · scale, only on the causal triangle
          for (let i = 0; i < T; i++) {
            const o = i * T;
            let dot = 0;
            for (let j = 0; j <= i; j++) dot += dp[o + j] * p[o + j];
            for (let j = 0; j <= i; j++) dp[o + j] = p[o + j] * (dp[o + j] - dot) * scale;
            for (let j = i + 1; j < T; j++) dp[o + j] = 0;
          }
          // dQ = dS · K ; dK += dSᵀ · Q
          kern.matmul(dp, kBlock, dqh.subarray(qOff, qOff + T * D), T, D, T, false, false, false);
          kern.matmul(
            dp,
            qh.subarray(qOff, qOff + T * D),
            dkh.subarray(kvOff, kvOff + T * D),
            T,
            D,
            T,
            true,
            false,
            true,
          );
        }
      }
      if (q.requiresGrad) fromHeadMajor(dqh, q.ensureGrad(), B, T, H, D, T, 0, true);
      if (k.requiresGrad) fromHeadMajor(dkh, k.ensureGrad(), B, T, KH, D, T, 0, true);
      if (v.requiresGrad) fromHeadMajor(dvh, v.ensureGrad(), B, T, KH, D, T, 0, true);
    });
  }
  return out;
}

/** Row i of scores (query position offset+i) may see keys 0..offset+i; scale, mask, softmax in place. */
function causalSoftmax(p: Float32Array, T: number, Tk: number, offset: number, scale: number): void {
  for (let i = 0; i < T; i++) {
    const o = i * Tk;
    const last = offset + i;
    let mx = Number.NEGATIVE_INFINITY;
    for (let j = 0; j <= last; j++) {
      const x = p[o + j] * scale;
      p[o + j] = x;
      if (x > mx) mx = x;
    }
    let s = 0;
    for (let j = 0; j <= last; j++) {
      const e = Math.exp(p[o + j] - mx);
      p[o + j] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let j = 0; j <= last; j++) p[o + j] *= inv;
    for (let j = last + 1; j < Tk; j++) p[o + j] = 0;
  }
}

/** [B, T, heads·D] → [B, heads, stride, D] at positions offset..offset+T-1. */
function toHeadMajor(
  src: Float32Array,
  dst: Float32Array,
  B: number,
  T: number,
  heads: number,
  D: number,
  stride: number,
  offset: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const so = (b * T + t) * heads * D;
      for (let h = 0; h < heads; h++) {
        const d0 = ((b * heads + h) * stride + offset + t) * D;
        const s0 = so + h * D;
        for (let i = 0; i < D; i++) dst[d0 + i] = src[s0 + i];
      }
    }
  }
}

/** Inverse of toHeadMajor, optionally accumulating. */
function fromHeadMajor(
  src: Float32Array,
  dst: Float32Array,
  B: number,
  T: number,
  heads: number,
  D: number,
  stride: number,
  offset: number,
  accumulate: boolean,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const d0 = (b * T + t) * heads * D;
      for (let h = 0; h < heads; h++) {
        const s0 = ((b * heads + h) * stride + offset + t) * D;
        const o = d0 + h * D;
        if (accumulate) for (let i = 0; i < D; i++) dst[o + i] += src[s0 + i];
        else for (let i = 0; i < D; i++) dst[o + i] = src[s0 + i];
      }
    }
  }
}
