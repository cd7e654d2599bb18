import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { noGrad } from "../../src/engine/autograd.ts";
import { generate } from "../../src/engine/generate.ts";
import { type Hooks, steerHook } from "../../src/engine/hooks.ts";
import type { LlamaModel } from "../../src/engine/model.ts";
import { loadModel } from "../../src/engine/pretrained.ts";
import { Rng } from "../../src/engine/rng.ts";
import { logSoftmax, type SamplingOptions, sampleToken } from "../../src/engine/sampling.ts";

const FIX = join(import.meta.dirname, "../fixtures/engine");
const model = loadModel(join(FIX, "llama_gqa"));
const prompt = [1, 5, 9, 12, 3];

/** Reference decoding without a cache: a full forward over the whole prefix at every step. */
function naive(
  m: LlamaModel,
  p: number[],
  steps: number,
  opts: SamplingOptions & { seed: number; hooks?: Hooks },
): { tokens: number[]; logprobs: number[] } {
  const rng = new Rng(new Rng(opts.seed).nextU32());
  const V = m.shape.vocabSize;
  const seq = [...p];
  const tokens: number[] = [];
  const logprobs: number[] = [];
  for (let s = 0; s < steps; s++) {
    const logits = noGrad(() => m.forward([seq], { hooks: opts.hooks }));
    const off = (seq.length - 1) * V;
    const t = sampleToken(logits.data, off, V, opts, rng);
    logprobs.push(logSoftmax(logits.data, off, V)[t]);
    tokens.push(t);
    seq.push(t);
  }
  return { tokens, logprobs };
}

describe("generation with a KV cache", () => {
  it("greedy: tokens and logprobs equal no-cache recomputation", () => {
    const [g] = generate(model, prompt, { maxTokens: 12, temperature: 0, logprobs: true });
    const ref = naive(model, prompt, 12, { temperature: 0, seed: 0 });
    expect(g.tokens).toEqual(ref.tokens);
    for (const [i, lp] of g.logprobs!.entries())
      expect(Math.abs(lp.logprob - ref.logprobs[i])).toBeLessThan(1e-4);
    expect(g.finishReason).toBe("length");
  });

  it("sampling with temperature, top-k and top-p equals no-cache sampling with the same seed", () => {
    for (const opts of [{ temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, topP: 0.8 }]) {
      const [g] = generate(model, prompt, { maxTokens: 10, seed: 42, ...opts });
      expect(g.tokens).toEqual(naive(model, prompt, 10, { seed: 42, ...opts }).tokens);
    }
  });

  it("is deterministic per seed; n samples are independent streams", () => {
    const a = generate(model, prompt, { maxTokens: 8, seed: 3, n: 3 });
    const b = generate(model, prompt, { maxTokens: 8, seed: 3, n: 3 });
    expect(a.map((s) => s.tokens)).toEqual(b.map((s) => s.tokens));
    const c = generate(model, prompt, { maxTokens: 8, seed: 4, n: 3 });
    expect(c.map((s) => s.tokens)).not.toEqual(a.map((s) => s.tokens));
    expect(new Set(a.map((s) => s.tokens.join(","))).size).toBeGreaterThan(1);
    // Sample 0 of a batch of 3 equals the single sample with the same seed.
    expect(generate(model, prompt, { maxTokens: 8, seed: 3 })[0].tokens).toEqual(a[0].tokens);
  });

  it("top-k sampling only draws from the k most likely tokens", () => {
    const samples = generate(model, prompt, { maxTokens: 1, seed: 1, n: 40, temperature: 2, topK: 3 });
    const logits = noGrad(() => model.forward([prompt])).data;
    const V = model.shape.vocabSize;
    const row = Array.from(logits.subarray((prompt.length - 1) * V, prompt.length * V));
    const top3 = row
      .map((v, i) => [v, i])
      .sort((x, y) => y[0] - x[0])
      .slice(0, 3)
      .map((x) => x[1]);
    for (const s of samples) expect(top3).toContain(s.tokens[0]);
  });

  it("stops on stop tokens and stop strings", () => {
    const [greedy] = generate(model, prompt, { maxTokens: 6, temperature: 0 });
    const stopTok = greedy.tokens[2];
    const [s1] = generate(model, prompt, { maxTokens: 6, temperature: 0, stopTokenIds: [stopTok] });
    expect(s1.finishReason).toBe("stop");
    expect(s1.tokens).toEqual(greedy.tokens.slice(0, greedy.tokens.indexOf(stopTok)));
    const decode = (ids: number[]) => ids.map((i) => `w${i} `).join("");
    const [s2] = generate(model, prompt, {
      maxTokens: 6,
      temperature: 0,
      decode,
      stop: [`w${greedy.tokens[1]} `],
    });
    expect(s2.finishReason).toBe("stop");
    expect(s2.text).toBe(
      decode(greedy.tokens).slice(0, decode(greedy.tokens).indexOf(`w${greedy.tokens[1]} `)),
    );
  });

  it("top logprobs are sorted, normalised, and include the greedy token first", () => {
    const [g] = generate(model, prompt, { maxTokens: 3, temperature: 0, topLogprobs: 5 });
    for (const lp of g.logprobs!) {
      expect(lp.top!.length).toBe(5);
      expect(lp.top![0].token).toBe(lp.token);
      for (let i = 1; i < 5; i++) expect(lp.top![i].logprob).toBeLessThanOrEqual(lp.top![i - 1].logprob);
      expect(lp.logprob).toBeLessThanOrEqual(0);
    }
  });

  it("hooks apply during cached generation exactly as in a full forward", () => {
    const rng = new Rng(9);
    const vec = Array.from({ length: model.shape.hiddenSize }, () => rng.normal() * 3);
    const hooks = { "blocks.0.hook_resid_post": steerHook(vec, 1) };
    const [g] = generate(model, prompt, { maxTokens: 8, temperature: 0, hooks });
    expect(g.tokens).toEqual(naive(model, prompt, 8, { temperature: 0, seed: 0, hooks }).tokens);
    const [plain] = generate(model, prompt, { maxTokens: 8, temperature: 0 });
    expect(g.tokens).not.toEqual(plain.tokens);
  });
});

describe("sampleToken", () => {
  // probs: 0.4, 0.3, 0.2, then 1000 tail tokens sharing 0.1.
  const V = 1003;
  const logits = new Float32Array(V);
  logits[0] = Math.log(0.4);
  logits[1] = Math.log(0.3);
  logits[2] = Math.log(0.2);
  for (let j = 3; j < V; j++) logits[j] = Math.log(0.1 / 1000);
  const counts = (opts: SamplingOptions, draws = 3000) => {
    const rng = new Rng(11);
    const c = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const t = sampleToken(logits, 0, V, opts, rng);
      const key = t < 3 ? String(t) : "tail";
      c.set(key, (c.get(key) ?? 0) + 1);
    }
    return c;
  };

  it("top-p keeps the smallest prefix of the full distribution reaching p", () => {
    // 0.4 + 0.3 < 0.75 ≤ 0.9: tokens 0, 1, 2, never the tail; 2 has 0.2/0.9 of the mass.
    const c = counts({ topP: 0.75 });
    expect(c.get("tail")).toBeUndefined();
    expect(c.get("2")! / 3000).toBeGreaterThan(0.18);
    expect(c.get("2")! / 3000).toBeLessThan(0.27);
    // p = 0.95 reaches into the tail.
    expect(counts({ topP: 0.95 }).get("tail")).toBeGreaterThan(0);
  });

  it("plain sampling matches the probabilities; top-k truncates; temperature 0 is argmax", () => {
    const c = counts({}, 6000);
    expect(c.get("0")! / 6000).toBeCloseTo(0.4, 1);
    expect(c.get("tail")! / 6000).toBeCloseTo(0.1, 1);
    expect([...counts({ topK: 2 }).keys()].sort()).toEqual(["0", "1"]);
    expect(sampleToken(logits, 0, V, { temperature: 0 }, new Rng(1))).toBe(0);
  });
});
