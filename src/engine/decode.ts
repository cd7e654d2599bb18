import type { HookContext, HookFn } from "./hooks.ts";
import { getKernels } from "./kernels/index.ts";
import type { MatmulKernels } from "./kernels/types.ts";
import type { DecodeKernels, WasmMatmulKernels } from "./kernels/wasm-matmul.ts";
import type { KvCache } from "./kv-cache.ts";
import type { LlamaModel } from "./model.ts";
import { Tensor } from "./tensor.ts";

/**
 * The fast single-token decode step: the same computation as `model.forward([[token]],
 * { cache })` for one batch row, without autograd, Tensor objects or per-op allocation.
 * Activations live in preallocated buffers inside the kernels' WASM memory; projections
 * are one raw gemv each (x · Wᵀ, reading pinned weights in place), and RMSNorm, SwiGLU and
 * attention over the cache are single WASM calls (kernels/decode.wat). Hooks still run:
 * each hook point hands the hook a copy of the activation as a [1, 1, d] Tensor and
 * writes back what the hook returns, exactly as the general forward does.
 *
 * Used by `generate` for n = 1 when `fastDecodeUnsupported` returns null; the KV cache
 * must live in the kernels' memory (`model.newCache(1, cap, kernelMemory())`), since
 * attention reads it by address. EMLAB_FAST_DECODE=0 turns the fast path off.
 */

/** Why the fast path cannot decode this model (null when it can). */
export function fastDecodeUnsupported(model: LlamaModel): string | null {
  if (process.env.EMLAB_FAST_DECODE === "0") return "EMLAB_FAST_DECODE=0";
  const kern = getKernels() as Partial<WasmMatmulKernels>;
  if (kern.name !== "wasm-simd" || !kern.decode) return "needs the WASM kernels with decode.wasm";
  if (model.adapters.size > 0) return "LoRA adapters are attached";
  const s = model.shape;
  if (s.hiddenSize % 4 !== 0 || s.intermediateSize % 4 !== 0)
    return "hidden and intermediate sizes must be multiples of 4";
  if (s.headDim % 16 !== 0) return "head dimension must be a multiple of 16";
  if (s.heads % s.kvHeads !== 0) return "heads must be a multiple of kv heads";
  return null;
}

/**
 * Weights up to this size are repacked into 8-row panels for each generate call (one
 * sequential stream per token, ~3x faster than reading row-major W out of L3); larger
 * models read their pinned row-major weights in place, row after row (gemvRows: also one
 * sequential stream, as fast as the panels once the weights come from DRAM), so memory
 * never doubles for them.
 */
const PACK_LIMIT_FLOATS = 64 * 1024 * 1024;

/** A projection's weight (and bias): a byte address when pinned in kernel memory, else the array. */
interface Proj {
  w: Float32Array;
  ptr: number;
  /** Byte address of the pack8 panels, or -1. */
  packed: number;
  bias: Float32Array | null;
  out: number;
  in: number;
}

interface LayerWeights {
  inNorm: number;
  postNorm: number;
  q: Proj;
  k: Proj;
  v: Proj;
  o: Proj;
  gate: Proj;
  up: Proj;
  down: Proj;
}

export class FastDecoder {
  private readonly model: LlamaModel;
  private readonly kern: WasmMatmulKernels;
  private readonly dk: DecodeKernels;
  private readonly layers: LayerWeights[];
  private readonly embed: Float32Array;
  private readonly finalNorm: number;
  private readonly head: Proj;
  /** Weights not pinned in kernel memory are copied in here for the norms (small). */
  private readonly owned: Float32Array[] = [];
  private block: Float32Array;
  /** The pack8 copies of every projection (empty when the model is over PACK_LIMIT_FLOATS). */
  private packed: Float32Array;
  private scoresLength: number;
  private readonly x: Float32Array;
  private readonly h: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly att: Float32Array;
  private readonly o: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly act: Float32Array;
  private readonly logits: Float32Array;
  private scores: Float32Array;
  /** Whether `scores` outgrew the block into its own allocation. */
  private scoresSeparate = false;

  /**
   * Throws when `fastDecodeUnsupported(model)` is not null. `packLimitFloats` (tests)
   * overrides PACK_LIMIT_FLOATS: 0 makes a small model decode like a large one.
   */
  constructor(model: LlamaModel, capacity: number, opts: { packLimitFloats?: number } = {}) {
    const why = fastDecodeUnsupported(model);
    if (why !== null) throw new Error(`fast decode unavailable: ${why}`);
    this.model = model;
    this.kern = getKernels() as WasmMatmulKernels;
    this.dk = this.kern.decode!;
    const s = model.shape;
    const d = s.hiddenSize;
    const proj = (path: string): Proj => {
      const w = model.param(`${path}.weight`);
      return {
        w: w.data,
        ptr: this.kern.isWasmBacked(w.data) ? w.data.byteOffset : -1,
        packed: -1,
        bias: model.params.get(`${path}.bias`)?.data ?? null,
        out: w.shape[0],
        in: w.shape[1],
      };
    };
    const vec = (name: string): number => {
      let data = model.param(name).data;
      if (!this.kern.isWasmBacked(data)) {
        const copy = this.kern.alloc(data.length);
        copy.set(data);
        this.owned.push(copy);
        data = copy;
      }
      return data.byteOffset;
    };
    this.layers = [];
    for (let i = 0; i < s.layers; i++) {
      const p = `model.layers.${i}`;
      this.layers.push({
        inNorm: vec(`${p}.input_layernorm.weight`),
        postNorm: vec(`${p}.post_attention_layernorm.weight`),
        q: proj(`${p}.self_attn.q_proj`),
        k: proj(`${p}.self_attn.k_proj`),
        v: proj(`${p}.self_attn.v_proj`),
        o: proj(`${p}.self_attn.o_proj`),
        gate: proj(`${p}.mlp.gate_proj`),
        up: proj(`${p}.mlp.up_proj`),
        down: proj(`${p}.mlp.down_proj`),
      });
    }
    this.embed = model.param("model.embed_tokens.weight").data;
    this.finalNorm = vec("model.norm.weight");
    this.head = proj(s.tieWordEmbeddings ? "model.embed_tokens" : "lm_head");
    this.packed = this.packWeights(opts.packLimitFloats ?? PACK_LIMIT_FLOATS);

    // One block for every activation (sizes are multiples of 4, so every view is 16-byte aligned).
    const qd = s.heads * s.headDim;
    const kvd = s.kvHeads * s.headDim;
    const ff = s.intermediateSize;
    // Padded to multiples of 8: gemv8 writes whole 8-row panels.
    const sizes = [d, d, qd, kvd, kvd, qd, d, ff, ff, ff, s.vocabSize];
    this.scoresLength = Math.ceil(Math.max(1, capacity) / 4) * 4;
    let total = this.scoresLength;
    for (const n of sizes) total += Math.ceil(n / 8) * 8;
    this.block = this.kern.alloc(total);
    let at = 0;
    const take = (n: number) => {
      const view = this.block.subarray(at, at + n);
      at += Math.ceil(n / 8) * 8;
      return view;
    };
    [this.x, this.h, this.q, this.k, this.v, this.att, this.o, this.gate, this.up, this.act, this.logits] =
      sizes.map(take);
    this.scores = take(this.scoresLength);
  }

  private projections(): Proj[] {
    const all: Proj[] = [];
    for (const L of this.layers) all.push(L.q, L.k, L.v, L.o, L.gate, L.up, L.down);
    all.push(this.head);
    return all;
  }

  /** Copies every projection into pack8 panels (one block), unless the model is too large. */
  private packWeights(limit: number): Float32Array {
    const all = this.projections();
    let total = 0;
    for (const p of all) total += Math.ceil(p.out / 8) * 8 * p.in;
    if (total > limit) return new Float32Array(0);
    const block = this.kern.alloc(total);
    let at = block.byteOffset;
    for (const p of all) {
      let src = p.ptr;
      let temp: Float32Array | null = null;
      if (src < 0) {
        temp = this.kern.alloc(p.w.length);
        temp.set(p.w);
        src = temp.byteOffset;
      }
      this.dk.pack8(src, at, p.out, p.in);
      if (temp !== null) this.kern.free(temp);
      p.packed = at;
      at += Math.ceil(p.out / 8) * 8 * p.in * 4;
    }
    return block;
  }

  /** Frees the activation buffers (and norm copies); the decoder is unusable after. */
  dispose(): void {
    if (this.packed.length > 0) this.kern.free(this.packed);
    this.packed = new Float32Array(0);
    for (const p of this.projections()) p.packed = -1;
    for (const a of this.owned.splice(0)) this.kern.free(a);
    if (this.scoresSeparate) this.kern.free(this.scores);
    this.scoresSeparate = false;
    if (this.block.length > 0) this.kern.free(this.block);
    this.block = new Float32Array(0);
  }

  /**
   * Decodes `token` at position cache.length of a one-row cache in kernel memory, advances
   * the cache, and returns the logits [V]: a view into this decoder's memory, valid until
   * the next step.
   */
  step(token: number, cache: KvCache, hooks: Map<string, HookFn[]> | null = null): Float32Array {
    const s = this.model.shape;
    const d = s.hiddenSize;
    const D = s.headDim;
    const V = s.vocabSize;
    if (this.block.length === 0) throw new Error("FastDecoder used after dispose()");
    if (cache.batch !== 1) throw new Error(`fast decode needs a one-row KV cache, got ${cache.batch} rows`);
    if (!Number.isInteger(token) || token < 0 || token >= V)
      throw new Error(`token id ${token} is out of range for vocabulary size ${V}`);
    const pos = cache.length;
    cache.reserve(pos + 1);
    if (cache.memory === null || !this.kern.isWasmBacked(cache.k[0]))
      throw new Error("fast decode needs a KV cache in kernel memory (model.newCache(1, n, kernelMemory()))");
    if (cache.capacity > this.scoresLength) this.growScores(cache.capacity);
    const rope = this.model.rope;
    rope.ensure(pos + 1);
    const dk = this.dk;
    const x = this.x;
    const hook = hooks === null ? null : makeHookRunner(hooks, pos);

    x.set(this.embed.subarray(token * d, (token + 1) * d));
    hook?.("hook_embed", null, x);
    const scale = 1 / Math.sqrt(D);
    for (let i = 0; i < this.layers.length; i++) {
      const L = this.layers[i];
      const bp = hook === null ? "" : `blocks.${i}.`;
      hook?.(`${bp}hook_resid_pre`, i, x);
      dk.rmsnorm(x.byteOffset, L.inNorm, this.h.byteOffset, d, s.rmsNormEps);
      this.project(this.h, L.q, this.q);
      this.project(this.h, L.k, this.k);
      this.project(this.h, L.v, this.v);
      rotate(this.q, rope.cos, rope.sin, pos, s.heads, D);
      rotate(this.k, rope.cos, rope.sin, pos, s.kvHeads, D);
      const kc = cache.k[i];
      const vc = cache.v[i];
      const cap = cache.capacity;
      for (let g = 0; g < s.kvHeads; g++) {
        kc.set(this.k.subarray(g * D, (g + 1) * D), (g * cap + pos) * D);
        vc.set(this.v.subarray(g * D, (g + 1) * D), (g * cap + pos) * D);
      }
      dk.attend(
        this.q.byteOffset,
        kc.byteOffset,
        vc.byteOffset,
        this.att.byteOffset,
        this.scores.byteOffset,
        s.heads,
        s.kvHeads,
        D,
        pos + 1,
        cap,
        scale,
      );
      this.project(this.att, L.o, this.o);
      hook?.(`${bp}hook_attn_out`, i, this.o);
      addInto(x, this.o);
      hook?.(`${bp}hook_resid_mid`, i, x);
      dk.rmsnorm(x.byteOffset, L.postNorm, this.h.byteOffset, d, s.rmsNormEps);
      this.project(this.h, L.gate, this.gate);
      this.project(this.h, L.up, this.up);
      dk.swiglu(this.gate.byteOffset, this.up.byteOffset, this.act.byteOffset, s.intermediateSize);
      this.project(this.act, L.down, this.o);
      hook?.(`${bp}hook_mlp_out`, i, this.o);
      addInto(x, this.o);
      hook?.(`${bp}hook_resid_post`, i, x);
    }
    cache.length = pos + 1;
    dk.rmsnorm(x.byteOffset, this.finalNorm, this.h.byteOffset, d, s.rmsNormEps);
    this.project(this.h, this.head, this.logits);
    return this.logits;
  }

  /** out = x · Wᵀ (+ bias), in place when W is pinned, else through the staging matmul. */
  private project(x: Float32Array, p: Proj, out: Float32Array): void {
    const hasBias = p.bias !== null;
    if (hasBias) out.set(p.bias!);
    if (p.packed >= 0) this.dk.gemv8(x.byteOffset, p.packed, out.byteOffset, p.out, p.in, hasBias);
    else if (p.ptr >= 0) this.dk.gemvRows(x.byteOffset, p.ptr, out.byteOffset, p.out, p.in, hasBias);
    else (this.kern as MatmulKernels).matmul(x, p.w, out, 1, p.out, p.in, false, true, hasBias);
  }

  private growScores(capacity: number): void {
    // A separate buffer from the block: the block's other views stay where they are.
    const n = Math.ceil(capacity / 4) * 4;
    if (this.scoresSeparate) this.kern.free(this.scores);
    this.scores = this.kern.alloc(n);
    this.scoresSeparate = true;
    this.scoresLength = n;
  }
}

/** x += y (float32, as the general path's `add`). */
function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/** Rotary embedding of one position in place (ops/rope.ts's arithmetic, one row). */
function rotate(
  x: Float32Array,
  cosT: Float32Array,
  sinT: Float32Array,
  pos: number,
  heads: number,
  D: number,
) {
  const half = D / 2;
  const tb = pos * half;
  for (let h = 0; h < heads; h++) {
    const o = h * D;
    for (let i = 0; i < half; i++) {
      const c = cosT[tb + i];
      const s = sinT[tb + i];
      const x1 = x[o + i];
      const x2 = x[o + i + half];
      x[o + i] = x1 * c - x2 * s;
      x[o + i + half] = x2 * c + x1 * s;
    }
  }
}

/**
 * Runs the hooks on one point like LlamaModel.forward: each function gets the current
 * activation ([1, 1, d], a copy the hook may keep) and may return a replacement of the
 * same size, which is written back into the buffer.
 */
function makeHookRunner(hooks: Map<string, HookFn[]>, pos0: number) {
  return (name: string, layer: number | null, buf: Float32Array): void => {
    const fns = hooks.get(name);
    if (!fns) return;
    const ctx: HookContext = { name, layer, batch: 1, seq: 1, pos0 };
    let cur = new Tensor(buf.slice(), [1, 1, buf.length]);
    for (const fn of fns) {
      const r = fn(cur, ctx);
      if (r) {
        if (r.size !== cur.size)
          throw new Error(`hook on ${name} returned [${r.shape}], expected [${cur.shape}]`);
        cur = r;
      }
    }
    buf.set(cur.data);
  };
}
