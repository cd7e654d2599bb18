import { afterEach, describe, expect, it } from "vitest";
import { noGrad } from "../../src/engine/autograd.ts";
import { makeShape } from "../../src/engine/config.ts";
import { FastDecoder, fastDecodeUnsupported } from "../../src/engine/decode.ts";
import { generate } from "../../src/engine/generate.ts";
import { ablateHook, type HookContext, type Hooks, resolveHooks, steerHook } from "../../src/engine/hooks.ts";
import { getKernels } from "../../src/engine/kernels/index.ts";
import { createWasmKernels, type WasmMatmulKernels } from "../../src/engine/kernels/wasm-matmul.ts";
import { loadKernelModule } from "../../src/engine/kernels/wasm-module.ts";
import { kernelMemory } from "../../src/engine/memory.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { Rng } from "../../src/engine/rng.ts";

// Head dim 16 (the fast path's minimum), GQA 4/2, ff 96: small, but every decode kernel runs.
function tinyModel(opts: { tied?: boolean; qwen?: boolean; pin?: boolean } = {}): LlamaModel {
  const shape = makeShape({
    vocabSize: 70,
    hiddenSize: 64,
    intermediateSize: 100,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    tieWordEmbeddings: opts.tied ?? false,
    ...(opts.qwen ? { modelType: "qwen2" as const, qkvBias: true } : {}),
  });
  // std 0.2 so attention is far from uniform and logits spread out.
  const m = LlamaModel.init(shape, 7, 0.2);
  const rng = new Rng(11);
  for (const [name, t] of m.params) {
    if (name.endsWith(".bias") || name.endsWith("norm.weight"))
      for (let i = 0; i < t.size; i++) t.data[i] = (name.endsWith(".bias") ? 0 : 1) + rng.normal() * 0.1;
  }
  if (opts.pin !== false) m.pinWeights();
  return m;
}

const prompt = [3, 17, 42, 5, 60, 8];

/** Logits of `steps` decode steps through the general forward and the fast decoder, same tokens. */
function bothPaths(
  m: LlamaModel,
  steps: number,
  hooks?: Hooks,
  capacity = prompt.length + steps,
  phase: (p: "general" | "fast") => void = () => {},
  decoder: { packLimitFloats?: number } = {},
) {
  const tokens = Array.from({ length: steps }, (_, i) => (i * 13 + 1) % m.shape.vocabSize);
  const mem = kernelMemory()!;
  const general: Float32Array[] = [];
  const fast: Float32Array[] = [];
  noGrad(() => {
    phase("general");
    const c1 = m.newCache(1, capacity);
    m.forward([prompt], { cache: c1, hooks });
    for (const t of tokens) general.push(m.forward([[t]], { cache: c1, hooks }).data.slice());
    phase("fast");
    const c2 = m.newCache(1, capacity, mem);
    m.forward([prompt], { cache: c2, hooks });
    const dec = new FastDecoder(m, capacity, decoder);
    try {
      const resolved = resolveHooks(hooks, m.shape.layers);
      for (const t of tokens) fast.push(dec.step(t, c2, resolved).slice());
      expect(c2.length).toBe(prompt.length + steps);
    } finally {
      dec.dispose();
      c2.dispose();
    }
  });
  return { general, fast };
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let e = 0;
  for (let s = 0; s < a.length; s++)
    for (let i = 0; i < a[s].length; i++) e = Math.max(e, Math.abs(a[s][i] - b[s][i]));
  return e;
}

describe("fast decode path (decode.ts)", () => {
  afterEach(() => {
    delete process.env.EMLAB_FAST_DECODE;
  });

  it("is available for this model on the WASM kernels, and says why not otherwise", () => {
    expect(fastDecodeUnsupported(tinyModel())).toBeNull();
    process.env.EMLAB_FAST_DECODE = "0";
    expect(fastDecodeUnsupported(tinyModel())).toBe("EMLAB_FAST_DECODE=0");
    delete process.env.EMLAB_FAST_DECODE;
    const odd = LlamaModel.init(makeShape({ vocabSize: 20, hiddenSize: 32, layers: 1, heads: 4 }), 1);
    expect(fastDecodeUnsupported(odd)).toMatch(/head dimension/);
  });

  it("gives the general forward's logits (1e-5) for pinned, unpinned, tied and biased (qwen2) models", () => {
    for (const opts of [{}, { pin: false }, { tied: true }, { qwen: true }]) {
      const { general, fast } = bothPaths(tinyModel(opts), 12);
      expect(general[0].length).toBe(70);
      // The logits are O(1) here, so this is a real check of every kernel on the path.
      expect(Math.max(...general[5].map(Math.abs))).toBeGreaterThan(0.5);
      expect(maxDiff(general, fast)).toBeLessThan(1e-5);
    }
  });

  it("decodes models over the repack limit from their row-major weights (gemvRows) with the same logits", () => {
    for (const opts of [{}, { pin: false }, { qwen: true, tied: true }]) {
      const { general, fast } = bothPaths(tinyModel(opts), 8, undefined, undefined, undefined, {
        packLimitFloats: 0,
      });
      expect(maxDiff(general, fast)).toBeLessThan(1e-5);
    }
  });

  it("applies hooks exactly like the general path (steering, ablation, replacement, context)", () => {
    const m = tinyModel();
    const d = m.shape.hiddenSize;
    const rng = new Rng(5);
    const dir = Array.from({ length: d }, () => rng.normal());
    const steer = Array.from({ length: d }, () => rng.normal());
    const seen = { general: [] as HookContext[], fast: [] as HookContext[] };
    let into = seen.general;
    const hooks: Hooks = {
      hook_embed: steerHook(steer, 0.5),
      "blocks.0.hook_attn_out": (act) => {
        const out = act.clone();
        for (let i = 0; i < out.size; i++) out.data[i] *= 2;
        return out;
      },
      "blocks.1.hook_resid_mid": [steerHook(steer, -1.5), ablateHook(dir)],
      "blocks.1.hook_mlp_out": (act, ctx) => {
        into.push({ ...ctx });
        expect(act.shape).toEqual([ctx.batch, ctx.seq, d]);
      },
    };
    const { general, fast } = bothPaths(m, 8, hooks, undefined, (p) => {
      into = seen[p];
    });
    expect(maxDiff(general, fast)).toBeLessThan(1e-5);
    // The hooks really change the output.
    expect(maxDiff(bothPaths(m, 8).general, general)).toBeGreaterThan(1e-2);
    // Same contexts on both paths: the prefill call, then one per decode step at its absolute position.
    expect(seen.fast).toEqual(seen.general);
    expect(seen.fast.map((c) => c.pos0)).toEqual([
      0,
      ...Array.from({ length: 8 }, (_, i) => prompt.length + i),
    ]);
  });

  it("keeps decoding past the cache's initial capacity", () => {
    const { general, fast } = bothPaths(tinyModel(), 20, undefined, prompt.length + 2);
    expect(maxDiff(general, fast)).toBeLessThan(1e-5);
  });

  it("generate: same tokens and logprobs with and without the fast path, and frees its kernel memory", () => {
    const m = tinyModel();
    const mem = kernelMemory()!;
    const probe = mem.alloc(16);
    const before = probe.byteOffset;
    mem.free(probe);
    const hooks = { "blocks.0.hook_resid_post": steerHook(new Array(64).fill(0.3)) };
    for (const opts of [
      { temperature: 0 },
      { temperature: 1, topK: 10, topP: 0.9 },
      { temperature: 0.8, hooks },
    ]) {
      const fast = generate(m, prompt, { maxTokens: 15, seed: 9, logprobs: true, ...opts })[0];
      process.env.EMLAB_FAST_DECODE = "0";
      const slow = generate(m, prompt, { maxTokens: 15, seed: 9, logprobs: true, ...opts })[0];
      delete process.env.EMLAB_FAST_DECODE;
      expect(fast.tokens).toEqual(slow.tokens);
      for (let i = 0; i < fast.tokens.length; i++)
        expect(Math.abs(fast.logprobs![i].logprob - slow.logprobs![i].logprob)).toBeLessThan(1e-5);
    }
    const again = mem.alloc(16);
    expect(again.byteOffset).toBe(before);
    mem.free(again);
  });

  it("gemvRows and gemv8 split across threads give one thread's bits, and x·Wᵀ", async () => {
    const loaded = loadKernelModule();
    if (typeof loaded === "string") throw new Error(loaded);
    const single = createWasmKernels(loaded, { threads: 1 });
    const two = createWasmKernels(loaded, { threads: 2, parallelMinMacs: 0, stallMs: 5000 });
    await two.ready();
    try {
      for (const [n, kk] of [
        [13, 20],
        [300, 36],
        [1001, 64],
      ]) {
        const results: Float32Array[] = [];
        for (const k of [single, two]) {
          const dk = k.decode!;
          const w = k.alloc(n * kk);
          const x = k.alloc(kk);
          const packed = k.alloc(Math.ceil(n / 8) * 8 * kk);
          const c = k.alloc(2 * Math.ceil(n / 8) * 8);
          const r = new Rng(n);
          for (let i = 0; i < w.length; i++) w[i] = r.normal();
          for (let i = 0; i < kk; i++) x[i] = r.normal();
          dk.pack8(w.byteOffset, packed.byteOffset, n, kk);
          const rows = c.subarray(0, n);
          const panels = c.subarray(Math.ceil(n / 8) * 8);
          for (let j = 0; j < n; j++) rows[j] = panels[j] = j;
          const before = k.stats().parallelCalls;
          dk.gemvRows(x.byteOffset, w.byteOffset, rows.byteOffset, n, kk, true);
          dk.gemv8(x.byteOffset, packed.byteOffset, panels.byteOffset, n, kk, true);
          if (k === two && n > 64) expect(k.stats().parallelCalls - before).toBe(2);
          for (let j = 0; j < n; j++) {
            let ref = j;
            for (let i = 0; i < kk; i++) ref += x[i] * w[j * kk + i];
            expect(Math.abs(rows[j] - ref)).toBeLessThan(1e-4);
            expect(Math.abs(panels[j] - ref)).toBeLessThan(1e-4);
          }
          results.push(c.slice(0, Math.ceil(n / 8) * 8 + n));
          for (const a of [w, x, packed, c]) k.free(a);
        }
        expect(Array.from(results[1])).toEqual(Array.from(results[0]));
      }
    } finally {
      await two.terminate();
    }
  });

  it("gemv8 on pack8 panels equals x·Wᵀ, with padding rows and accumulation", () => {
    const k = getKernels() as WasmMatmulKernels;
    const dk = k.decode!;
    const rng = new Rng(3);
    for (const [n, kk] of [
      [13, 20],
      [8, 4],
      [40, 256],
    ]) {
      const w = k.alloc(n * kk);
      const x = k.alloc(kk);
      const packed = k.alloc(Math.ceil(n / 8) * 8 * kk);
      const c = k.alloc(Math.ceil(n / 8) * 8);
      for (let i = 0; i < w.length; i++) w[i] = rng.normal();
      for (let i = 0; i < kk; i++) x[i] = rng.normal();
      dk.pack8(w.byteOffset, packed.byteOffset, n, kk);
      for (let j = 0; j < n; j++) c[j] = j;
      dk.gemv8(x.byteOffset, packed.byteOffset, c.byteOffset, n, kk, true);
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let i = 0; i < kk; i++) ref += x[i] * w[j * kk + i];
        expect(Math.abs(c[j] - (ref + j))).toBeLessThan(1e-4);
      }
      for (const a of [w, x, packed, c]) k.free(a);
    }
  });
});
