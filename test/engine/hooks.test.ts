import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { backward, noGrad } from "../../src/engine/autograd.ts";
import { ablateHook, hookNames, steerHook } from "../../src/engine/hooks.ts";
import { crossEntropy } from "../../src/engine/ops/cross-entropy.ts";
import { loadModel } from "../../src/engine/pretrained.ts";
import { Rng } from "../../src/engine/rng.ts";
import { Tensor } from "../../src/engine/tensor.ts";

const FIX = join(import.meta.dirname, "../fixtures/engine");
const model = loadModel(join(FIX, "llama_tied_gqa"));
const ids = [
  [1, 4, 7, 2, 9],
  [3, 3, 8, 10, 11],
];
const d = model.shape.hiddenSize;

describe("hooks (TransformerLens names)", () => {
  it("runWithCache returns every named activation with [B, T, d] and consistent residual arithmetic", () => {
    const { logits, cache } = model.runWithCache(ids);
    expect(hookNames(3)).toHaveLength(1 + 3 * 5);
    expect([...cache.keys()].sort()).toEqual(hookNames(3).sort());
    for (const t of cache.values()) expect(t.shape).toEqual([2, 5, d]);
    const plain = noGrad(() => model.forward(ids));
    expect(Array.from(logits.data)).toEqual(Array.from(plain.data));
    const get = (n: string) => cache.get(n)!.data;
    for (let i = 0; i < 3; i++) {
      const pre = get(`blocks.${i}.hook_resid_pre`);
      const mid = get(`blocks.${i}.hook_resid_mid`);
      const post = get(`blocks.${i}.hook_resid_post`);
      const attn = get(`blocks.${i}.hook_attn_out`);
      const mlp = get(`blocks.${i}.hook_mlp_out`);
      for (let j = 0; j < pre.length; j++) {
        expect(mid[j]).toBeCloseTo(pre[j] + attn[j], 5);
        expect(post[j]).toBeCloseTo(mid[j] + mlp[j], 5);
      }
      if (i > 0) expect(Array.from(pre)).toEqual(Array.from(get(`blocks.${i - 1}.hook_resid_post`)));
    }
    expect(Array.from(get("blocks.0.hook_resid_pre"))).toEqual(Array.from(get("hook_embed")));
  });

  it("rejects unknown hook names", () => {
    expect(() => model.runWithCache(ids, ["blocks.7.hook_resid_post"])).toThrow(/unknown hook point/);
  });

  it("steering adds the vector; ablation removes the direction downstream of the hook", () => {
    const rng = new Rng(2);
    const v = Array.from({ length: d }, () => rng.normal());
    const steered = model.runWithCache(ids, ["blocks.1.hook_resid_post"], {
      hooks: { "blocks.1.hook_resid_post": steerHook(v, 2) },
    });
    const base = model.runWithCache(ids, ["blocks.1.hook_resid_post"]);
    const a = steered.cache.get("blocks.1.hook_resid_post")!.data;
    const b = base.cache.get("blocks.1.hook_resid_post")!.data;
    for (let j = 0; j < a.length; j++) expect(a[j]).toBeCloseTo(b[j] + 2 * v[j % d], 5);
    const ablated = model.runWithCache(ids, ["blocks.0.hook_resid_mid"], {
      hooks: { "blocks.0.hook_resid_mid": ablateHook(v) },
    });
    const x = ablated.cache.get("blocks.0.hook_resid_mid")!.data;
    for (let r = 0; r < x.length / d; r++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += x[r * d + j] * v[j];
      expect(Math.abs(dot)).toBeLessThan(1e-4);
    }
  });

  it("gradients flow through hook edits (a trainable steering vector matches finite differences)", () => {
    const rng = new Rng(5);
    const vec = new Tensor(
      Float32Array.from({ length: d }, () => rng.normal() * 0.1),
      [d],
      true,
    );
    const targets = Int32Array.from(ids.flat().map((t) => (t + 1) % model.shape.vocabSize));
    const loss = () =>
      crossEntropy(model.runWithHooks(ids, { "blocks.1.hook_resid_mid": steerHook(vec) }), targets);
    model.setBaseTrainable(false);
    try {
      vec.grad = null;
      backward(loss());
      const g = vec.grad!;
      for (const j of [0, 5, 11, 23]) {
        const orig = vec.data[j];
        const eps = 1e-2;
        vec.data[j] = orig + eps;
        const lp = noGrad(loss).item();
        vec.data[j] = orig - eps;
        const lm = noGrad(loss).item();
        vec.data[j] = orig;
        expect(Math.abs((lp - lm) / (2 * eps) - g[j])).toBeLessThan(2e-3);
      }
      expect(Math.max(...Array.from(g).map(Math.abs))).toBeGreaterThan(1e-3);
    } finally {
      model.setBaseTrainable(true);
    }
  });
});
