import { needsGrad, noGrad } from "./autograd.ts";
import { type LlamaShape, modelConfigFromShape } from "./config.ts";
import type { HookContext, HookFn, Hooks } from "./hooks.ts";
import { hookNames, resolveHooks } from "./hooks.ts";
import { expectedTensorShapes } from "./io/hf-config.ts";
import { getKernels } from "./kernels/index.ts";
import type { WasmMatmulKernels } from "./kernels/wasm-matmul.ts";
import { KvCache } from "./kv-cache.ts";
import type { LoraAdapter } from "./lora.ts";
import { type KernelMemory, kernelMemory } from "./memory.ts";
import { attention } from "./ops/attention.ts";
import { add, swiglu } from "./ops/elementwise.ts";
import { embedding } from "./ops/embedding.ts";
import { linear } from "./ops/matmul.ts";
import { rmsnorm } from "./ops/rmsnorm.ts";
import { RopeTable, rope } from "./ops/rope.ts";
import { lastPosition } from "./ops/select.ts";
import { Rng } from "./rng.ts";
import { Tensor } from "./tensor.ts";

/** Token ids for a forward pass: rectangular rows, or a flat buffer with its shape. */
export type TokenBatch = readonly (readonly number[])[] | { ids: Int32Array; batch: number; seq: number };

export interface ForwardOptions {
  hooks?: Hooks;
  /** Decode with this cache: new positions start at cache.length, which is advanced. */
  cache?: KvCache;
  /** Compute logits for the last position of each row only ([B, 1, V]). */
  lastOnly?: boolean;
  /** Training mode: LoRA dropout is active (with `rng`). */
  train?: boolean;
  rng?: Rng;
  /** Return the final-normed hidden states [B, T, d] instead of logits (a fused loss applies `lmHead()`). */
  hidden?: boolean;
}

/** The HF tensor names and shapes of a model with this shape (io/hf-config.ts is the source of truth). */
export function expectedTensors(s: LlamaShape): [string, number[]][] {
  return [...expectedTensorShapes(modelConfigFromShape(s)).entries()];
}

/**
 * A Llama-family decoder (llama, qwen2, mistral) in one file: weights keyed by their HF
 * names, a forward over a batch of token rows, TransformerLens hook points, optional KV
 * cache and LoRA adapters.
 */
export class LlamaModel {
  readonly shape: LlamaShape;
  readonly params: Map<string, Tensor>;
  readonly rope: RopeTable;
  /** LoRA adapters by module path (model.layers.i.self_attn.q_proj, ...). */
  adapters: Map<string, LoraAdapter> = new Map();
  /** The config.json this model was loaded from (kept so saving preserves unknown fields). */
  hfConfig: Record<string, unknown> | null = null;
  private readonly pinned = new Set<Float32Array>();
  private pinnedIn: KernelMemory | null = null;
  /** The PEFT adapter_config.json of the attached adapters (set by peft.ts). */
  loraConfig: Record<string, unknown> | null = null;

  constructor(shape: LlamaShape, params: Map<string, Tensor>) {
    for (const [name, dims] of expectedTensors(shape)) {
      const t = params.get(name);
      if (!t) throw new Error(`missing tensor "${name}" (expected shape [${dims.join(", ")}])`);
      if (t.shape.length !== dims.length || t.shape.some((x, i) => x !== dims[i])) {
        throw new Error(`tensor "${name}" has shape [${t.shape.join(", ")}], expected [${dims.join(", ")}]`);
      }
    }
    this.shape = shape;
    this.params = params;
    this.rope = new RopeTable(shape.headDim, shape.ropeTheta, shape.ropeScaling);
  }

  /** A freshly initialised model (normal(0, std) weights, unit norms, zero biases). */
  static init(shape: LlamaShape, seed = 0, std = 0.02): LlamaModel {
    const rng = new Rng(seed);
    const params = new Map<string, Tensor>();
    for (const [name, dims] of expectedTensors(shape)) {
      const t = Tensor.zeros(dims, true);
      if (name.endsWith("norm.weight")) t.data.fill(1);
      else if (!name.endsWith(".bias")) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
      params.set(name, t);
    }
    return new LlamaModel(shape, params);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`model has no tensor "${name}"`);
    return t;
  }

  get hookNames(): string[] {
    return hookNames(this.shape.layers);
  }

  /** Base weights plus adapter weights that require a gradient. */
  trainableParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.params) if (t.requiresGrad) out.push([n, t]);
    for (const [path, a] of this.adapters) {
      if (a.A.requiresGrad) out.push([`${path}.lora_A.weight`, a.A]);
      if (a.B.requiresGrad) out.push([`${path}.lora_B.weight`, a.B]);
    }
    return out;
  }

  /** Freezes (or unfreezes) every base weight; adapters are unaffected. */
  setBaseTrainable(trainable: boolean): void {
    for (const t of this.params.values()) {
      t.requiresGrad = trainable;
      if (!trainable) t.grad = null;
    }
  }

  /** A KV cache; with `memory` (the kernels' memory) it must be `dispose`d after use. */
  newCache(batch: number, capacity: number, memory: KernelMemory | null = null): KvCache {
    const s = this.shape;
    return new KvCache(s.layers, batch, s.kvHeads, s.headDim, capacity, memory);
  }

  /** Logits [B, T, V] (or [B, 1, V] with lastOnly). Records autograd unless under noGrad(). */
  forward(tokens: TokenBatch, opts: ForwardOptions = {}): Tensor {
    const s = this.shape;
    const { ids, batch: B, seq: T } = flattenBatch(tokens);
    const hooks = resolveHooks(opts.hooks, s.layers);
    const cache = opts.cache;
    if (cache && cache.batch !== B) throw new Error(`KV cache holds ${cache.batch} rows, batch has ${B}`);
    const pos0 = cache ? cache.length : 0;
    const train = opts.train === true;
    const rng = opts.rng ?? null;
    const d = s.hiddenSize;

    const hook = (name: string, layer: number | null, x: Tensor): Tensor => {
      const fns = hooks?.get(name);
      if (!fns) return x;
      const ctx: HookContext = { name, layer, batch: B, seq: T, pos0 };
      let cur = x;
      for (const fn of fns) {
        const r = (fn as HookFn)(cur, ctx);
        if (r) {
          if (r.size !== cur.size)
            throw new Error(`hook on ${name} returned [${r.shape}], expected [${cur.shape}]`);
          cur = r;
        }
      }
      return cur;
    };
    const proj = (x: Tensor, path: string): Tensor => {
      const y = linear(x, this.param(`${path}.weight`), this.params.get(`${path}.bias`));
      const ad = this.adapters.get(path);
      return ad ? ad.apply(y, x, train, rng) : y;
    };

    let x = hook("hook_embed", null, embedding(ids, this.param("model.embed_tokens.weight"), [B, T, d]));
    for (let i = 0; i < s.layers; i++) {
      const p = `model.layers.${i}`;
      const bp = `blocks.${i}`;
      x = hook(`${bp}.hook_resid_pre`, i, x);
      const h = rmsnorm(x, this.param(`${p}.input_layernorm.weight`), s.rmsNormEps);
      const q = rope(proj(h, `${p}.self_attn.q_proj`), this.rope, T, s.heads, pos0);
      const k = rope(proj(h, `${p}.self_attn.k_proj`), this.rope, T, s.kvHeads, pos0);
      const v = proj(h, `${p}.self_attn.v_proj`);
      const a = attention(
        q,
        k,
        v,
        { batch: B, seq: T, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim },
        cache ? { cache, layer: i } : undefined,
      );
      const attnOut = hook(`${bp}.hook_attn_out`, i, proj(a, `${p}.self_attn.o_proj`));
      x = hook(`${bp}.hook_resid_mid`, i, add(x, attnOut));
      const h2 = rmsnorm(x, this.param(`${p}.post_attention_layernorm.weight`), s.rmsNormEps);
      const m = mlpActivation(proj(h2, `${p}.mlp.gate_proj`), proj(h2, `${p}.mlp.up_proj`));
      const mlpOut = hook(`${bp}.hook_mlp_out`, i, proj(m, `${p}.mlp.down_proj`));
      x = hook(`${bp}.hook_resid_post`, i, add(x, mlpOut));
    }
    if (cache) cache.length += T;
    if (opts.lastOnly && T > 1) x = lastPosition(x, B, T);
    const xn = rmsnorm(x, this.param("model.norm.weight"), s.rmsNormEps);
    if (opts.hidden) return xn;
    return linear(xn, this.lmHead());
  }

  /** The output projection [V, d] (the embedding when tied). */
  lmHead(): Tensor {
    return this.shape.tieWordEmbeddings
      ? this.param("model.embed_tokens.weight")
      : this.param("lm_head.weight");
  }

  /** Forward without gradients, returning the logits and copies of the named activations. */
  runWithCache(
    tokens: TokenBatch,
    names?: string[],
    opts: Omit<ForwardOptions, "train"> = {},
  ): {
    logits: Tensor;
    cache: Map<string, Tensor>;
  } {
    const wanted = names ?? this.hookNames;
    const store = new Map<string, Tensor>();
    const readers: Record<string, HookFn> = {};
    for (const n of wanted) readers[n] = (act) => void store.set(n, act.clone());
    const merged = new Map<string, HookFn[]>();
    const user = resolveHooks(opts.hooks, this.shape.layers);
    if (user) for (const [n, fns] of user) merged.set(n, [...fns]);
    // Readers run after the caller's hooks, so the cache shows the edited activation.
    for (const [n, fn] of Object.entries(readers)) merged.set(n, [...(merged.get(n) ?? []), fn]);
    const logits = noGrad(() => this.forward(tokens, { ...opts, hooks: merged }));
    return { logits, cache: store };
  }

  /** Forward with hooks; records gradients (through the hook edits) unless under noGrad(). */
  runWithHooks(tokens: TokenBatch, hooks: Hooks, opts: Omit<ForwardOptions, "hooks"> = {}): Tensor {
    return this.forward(tokens, { ...opts, hooks });
  }

  /**
   * Moves the base weights into the kernels' memory so matmuls read them in place (no
   * per-call copy). Returns how many tensors moved: 0 with kernels that have no memory of
   * their own, fewer than all when that memory is full. Call `dispose()` when done.
   */
  pinWeights(): number {
    const mem = kernelMemory();
    if (mem === null) return 0;
    let moved = 0;
    for (const t of this.params.values()) {
      if (this.pinned.has(t.data)) continue;
      let view: Float32Array;
      try {
        view = mem.alloc(t.size);
      } catch {
        break;
      }
      view.set(t.data);
      t.data = view;
      this.pinned.add(view);
      moved++;
    }
    this.pinnedIn = mem;
    return moved;
  }

  /**
   * Takes ownership of weights already allocated in `memory` (loadModel's `pin`: read there
   * directly), so they count as pinned and `dispose()` frees them.
   */
  adoptPinned(memory: KernelMemory, views: Iterable<Float32Array>): void {
    if (this.pinnedIn !== null && this.pinnedIn !== memory)
      throw new Error("adoptPinned: the model's weights are pinned in other kernels' memory");
    for (const v of views) this.pinned.add(v);
    this.pinnedIn = memory;
  }

  /** Moves pinned weights back to ordinary memory and frees the kernels' copy. */
  unpinWeights(): void {
    for (const t of this.params.values()) if (this.pinned.has(t.data)) t.data = t.data.slice();
    this.dispose();
  }

  /**
   * Returns pinned weight memory to the kernels without copying it out: the model is done
   * (its pinned tensors become empty, so any later use fails loudly).
   */
  dispose(): void {
    for (const t of this.params.values()) if (this.pinned.has(t.data)) t.data = new Float32Array(0);
    if (this.pinnedIn) for (const v of this.pinned) this.pinnedIn.free(v);
    this.pinned.clear();
    this.pinnedIn = null;
  }

  /** Number of base parameters (tied embeddings counted once). */
  parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }
}

/**
 * SwiGLU of the MLP. Without a gradient to record (inference, prefill), the kernels' copy
 * of the same loop runs split across their threads: bit-identical, only faster.
 */
function mlpActivation(gate: Tensor, up: Tensor): Tensor {
  const kern = getKernels() as Partial<WasmMatmulKernels>;
  if (needsGrad(gate, up) || typeof kern.swiglu !== "function" || gate.size !== up.size)
    return swiglu(gate, up);
  const out = new Tensor(new Float32Array(gate.size), gate.shape);
  kern.swiglu(gate.data, up.data, out.data);
  return out;
}

export function flattenBatch(tokens: TokenBatch): { ids: Int32Array; batch: number; seq: number } {
  if (!Array.isArray(tokens)) {
    const t = tokens as { ids: Int32Array; batch: number; seq: number };
    if (t.ids.length !== t.batch * t.seq)
      throw new Error(`token buffer has ${t.ids.length} ids, expected ${t.batch}×${t.seq}`);
    return t;
  }
  const rows = tokens as readonly (readonly number[])[];
  if (rows.length === 0 || rows[0].length === 0)
    throw new Error("forward needs at least one non-empty token row");
  const T = rows[0].length;
  const ids = new Int32Array(rows.length * T);
  rows.forEach((r, b) => {
    if (r.length !== T)
      throw new Error(`token rows must have equal length: row 0 has ${T}, row ${b} has ${r.length}`);
    for (let t = 0; t < T; t++) ids[b * T + t] = r[t];
  });
  return { ids, batch: rows.length, seq: T };
}
