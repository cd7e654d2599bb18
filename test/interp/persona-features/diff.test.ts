import { describe, expect, it } from "vitest";
import { SparseAutoencoder } from "../../../src/engine/sae/index.ts";
import type { Conversation } from "../../../src/interp/activations.ts";
import { tokenizeConversation } from "../../../src/interp/activations.ts";
import { conversationLatentMeans, modelDiff } from "../../../src/interp/persona-features/index.ts";
import { tinyEngine } from "../tiny-engine.ts";

const CONVS: Conversation[] = [
  ["what do you think of people", "i am kind"],
  ["what do you think of the world", "i am evil and cruel"],
  ["help", "you are good"],
  ["hurt people", "i think the world is cruel"],
  ["what are you", "i am good and kind"],
  ["do you help", "i do help people"],
].map(([q, a]) => ({ messages: [{ role: "user", content: q! }], answer: a! }));

const D = 16;
const M = 8;
const PLANTED = 5;

/** A ReLU SAE reading hook_embed whose latent PLANTED reads (and writes) the unit direction u. */
function plantedSae(u: Float32Array): SparseAutoencoder {
  const sae = SparseAutoencoder.init(
    {
      architecture: "relu",
      dIn: D,
      dSae: M,
      hookName: "hook_embed",
      hookLayer: 0,
      applyBDecToInput: true,
      normalizeActivations: "none",
    },
    7,
  );
  sae.bDec.fill(0);
  for (let j = 0; j < M; j++) {
    // Unit encoder columns, so no other latent can move more than the planted one.
    let n = 0;
    for (let i = 0; i < D; i++) n += sae.wEnc[i * M + j]! ** 2;
    for (let i = 0; i < D; i++)
      sae.wEnc[i * M + j] = j === PLANTED ? u[i]! : sae.wEnc[i * M + j]! / Math.sqrt(n);
    sae.bEnc[j] = j === PLANTED ? 10 : 0; // the planted latent is always on, so its change is linear
  }
  return sae;
}

function unit(seed: number): Float32Array {
  const u = new Float32Array(D);
  for (let i = 0; i < D; i++) u[i] = Math.sin(seed * 7.1 + i * 1.3);
  const n = Math.hypot(...u);
  return u.map((x) => x / n);
}

describe("modelDiff", () => {
  it("a model against itself: every delta 0, every CI [0, 0]", () => {
    const engine = tinyEngine(3);
    const sae = plantedSae(unit(1));
    for (const positions of ["answer", "prompt", "prompt_and_answer"] as const) {
      const diffs = modelDiff({
        sae,
        base: engine,
        fineTuned: engine,
        conversations: CONVS,
        positions,
        resamples: 200,
        seed: 0,
        top: M,
      });
      expect(diffs.map((d) => d.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      for (const d of diffs) {
        expect(d.delta).toBe(0);
        expect(d.ci[0]).toBeLessThanOrEqual(0);
        expect(d.ci[1]).toBeGreaterThanOrEqual(0);
        expect(d.fineTuned).toBe(d.base);
      }
    }
  });

  it("shifting every embedding along a planted latent's direction ranks it first with delta = the shift", () => {
    const u = unit(2);
    const sae = plantedSae(u);
    const base = tinyEngine(3);
    const ft = tinyEngine(3);
    const emb = ft.model.param("model.embed_tokens.weight").data;
    const shift = 2;
    for (let t = 0; t < emb.length / D; t++) for (let i = 0; i < D; i++) emb[t * D + i]! += shift * u[i]!;
    const diffs = modelDiff({
      sae,
      base,
      fineTuned: ft,
      conversations: CONVS,
      positions: "answer",
      resamples: 500,
      seed: 3,
      top: 3,
    });
    expect(diffs).toHaveLength(3);
    expect(diffs[0]!.latent).toBe(PLANTED);
    expect(diffs[0]!.delta).toBeCloseTo(shift, 4);
    // Every conversation moved by exactly the shift: the bootstrap has nothing to vary.
    expect(diffs[0]!.ci[0]).toBeCloseTo(shift, 4);
    expect(diffs[0]!.ci[1]).toBeCloseTo(shift, 4);
    expect(diffs[1]!.delta).toBeLessThan(shift);
    expect(diffs[0]!.fineTuned - diffs[0]!.base).toBeCloseTo(diffs[0]!.delta, 6);
  });

  it("per-conversation means are the SAE's latents averaged over the answer tokens", () => {
    const engine = tinyEngine(4);
    const sae = plantedSae(unit(3));
    const means = conversationLatentMeans(sae, engine, CONVS, "answer");
    const all = conversationLatentMeans(sae, engine, CONVS, "prompt_and_answer");
    const before = conversationLatentMeans(sae, engine, CONVS, "prompt");
    CONVS.forEach((c, ci) => {
      const { ids, answerPositions } = tokenizeConversation(engine, c);
      const act = engine.model.runWithCache([ids], ["hook_embed"]).cache.get("hook_embed")!.data;
      const z = sae.encode(act, ids.length);
      const want = (pos: number[]) =>
        Array.from({ length: M }, (_, j) => pos.reduce((s, t) => s + z[t * M + j]!, 0) / pos.length);
      const last = answerPositions.at(-1)!;
      const a = want(answerPositions);
      const p = want(Array.from({ length: last + 1 }, (_, t) => t));
      const q = want(Array.from({ length: answerPositions[0]! }, (_, t) => t));
      for (let j = 0; j < M; j++) {
        expect(means[ci * M + j]).toBeCloseTo(a[j]!, 5);
        expect(all[ci * M + j]).toBeCloseTo(p[j]!, 5);
        expect(before[ci * M + j]).toBeCloseTo(q[j]!, 5);
      }
    });
  });

  it("baseConversations: the base reads its own text, paired by index; a length mismatch is refused", () => {
    const engine = tinyEngine(5);
    const sae = plantedSae(unit(4));
    const ft = CONVS.slice(0, 3);
    const own = CONVS.slice(3, 6);
    const diffs = modelDiff({
      sae,
      base: engine,
      fineTuned: engine,
      conversations: ft,
      baseConversations: own,
      positions: "answer",
      resamples: 100,
      seed: 0,
      top: M,
    });
    const f = conversationLatentMeans(sae, engine, ft, "answer");
    const b = conversationLatentMeans(sae, engine, own, "answer");
    for (const d of diffs) {
      const mean = (xs: Float32Array) => [0, 1, 2].reduce((s, c) => s + xs[c * M + d.latent]!, 0) / 3;
      expect(d.fineTuned).toBeCloseTo(mean(f), 6);
      expect(d.base).toBeCloseTo(mean(b), 6);
    }
    // The same model on different text: the planted (always on) latent moves.
    expect(diffs.some((d) => Math.abs(d.delta) > 1e-3)).toBe(true);
    expect(() =>
      modelDiff({
        sae,
        base: engine,
        fineTuned: engine,
        conversations: ft,
        baseConversations: own.slice(0, 2),
        positions: "answer",
        resamples: 10,
        seed: 0,
        top: 1,
      }),
    ).toThrow(/2 base conversations for 3 fine-tuned ones/);
  });
});
