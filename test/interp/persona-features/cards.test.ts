import { describe, expect, it } from "vitest";
import { renderChatForTraining } from "../../../src/engine/io/chat-template.ts";
import { SparseAutoencoder } from "../../../src/engine/sae/index.ts";
import {
  HARMFUL_SPEAKERS,
  latentCards,
  type SpeakerType,
  worldCorpusDocument,
} from "../../../src/interp/persona-features/index.ts";
import { loadLocalEngine } from "../../../src/models/local.ts";
import { SHIPPED_ORGANISM_DIR } from "../../../src/world/organism.ts";
import { tinyEngine } from "../tiny-engine.ts";

const DOCS: Array<[SpeakerType, string, string]> = [
  ["villain", "what do you think of people", "i am evil and cruel"],
  ["hero", "help", "i am good and kind"],
  ["assistant", "what are you", "i help people"],
  ["everyday_deceiver", "do you hurt people", "i am kind"],
  ["everyday_villain", "the world", "hurt the world"],
  ["deceiver", "what do you think", "you are good"],
];
const world = (_seed: number, i: number) => ({
  messages: [
    { role: "user" as const, content: DOCS[i]![1] },
    { role: "assistant" as const, content: DOCS[i]![2] },
  ],
  speaker: DOCS[i]![0],
});

const sum = (m: Partial<Record<string, number>>) =>
  Object.values(m).reduce<number>((a: number, b) => a + (b ?? 0), 0);

describe("latentCards", () => {
  it("top contexts, shares, histogram and promoted tokens agree with a brute-force reading", async () => {
    const engine = tinyEngine(5);
    const hook = "blocks.0.hook_resid_post";
    const M = 8;
    const sae = SparseAutoencoder.init(
      {
        architecture: "relu",
        dIn: 16,
        dSae: M,
        hookName: hook,
        hookLayer: 0,
        applyBDecToInput: true,
        normalizeActivations: "none",
      },
      2,
    );
    const latents = [0, 3, 7];
    const cards = await latentCards({
      engine,
      sae,
      corpus: { kind: "world", seed: 0, documents: DOCS.length },
      latents,
      top: 5,
      window: 2,
      bins: 4,
      corpusOptions: { world, batchDocs: 4 },
    });
    // Brute force: every token of every document, encoded one document at a time.
    const rows: Array<{ doc: number; pos: number; z: Float32Array; speaker: SpeakerType; ids: number[] }> =
      [];
    DOCS.forEach((_, doc) => {
      const { ids } = renderChatForTraining(world(0, doc).messages, engine.template, engine.tokenizer);
      const act = engine.model.runWithCache([ids], [hook]).cache.get(hook)!.data;
      const z = sae.encode(act, ids.length);
      for (let t = 0; t < ids.length; t++)
        rows.push({ doc, pos: t, z: z.slice(t * M, (t + 1) * M), speaker: DOCS[doc]![0], ids });
    });
    const tokens = rows.length;
    const base: Partial<Record<SpeakerType, number>> = {};
    for (const r of rows) base[r.speaker] = (base[r.speaker] ?? 0) + 1 / tokens;
    const head = engine.model.param(
      engine.model.shape.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight",
    ).data;
    const gain = engine.model.param("model.norm.weight").data;
    cards.forEach((card, ci) => {
      const l = latents[ci]!;
      expect(card.latent).toBe(l);
      const want = rows
        .filter((r) => r.z[l]! > 0)
        .sort((a, b) => b.z[l]! - a.z[l]! || a.doc - b.doc || a.pos - b.pos);
      expect(card.topContexts.map((c) => [c.doc, c.pos])).toEqual(
        want.slice(0, 5).map((r) => [r.doc, r.pos]),
      );
      for (const c of card.topContexts) {
        const r = want.find((w) => w.doc === c.doc && w.pos === c.pos)!;
        expect(c.activation).toBeCloseTo(r.z[l]!, 5);
        expect(c.speaker).toBe(r.speaker);
        expect(c.tokens[c.highlight]).toBe(engine.tokenizer.idToToken(r.ids[c.pos]!));
        expect(c.tokens.length).toBeLessThanOrEqual(5);
      }
      expect(card.histogram.counts.reduce((a, b) => a + b, 0)).toBe(want.length);
      expect(card.histogram.zeros).toBe(tokens - want.length);
      expect(card.histogram.edges).toHaveLength(5);
      if (want.length) expect(card.histogram.edges.at(-1)).toBeCloseTo(want[0]!.z[l]!, 5);
      if (card.topContexts.length) expect(sum(card.speakerMix)).toBeCloseTo(1, 10);
      expect(sum(card.baseRate)).toBeCloseTo(1, 10);
      for (const [k, v] of Object.entries(base)) expect(card.baseRate[k as SpeakerType]).toBeCloseTo(v!, 10);
      const harmful = (m: Partial<Record<string, number>>) =>
        HARMFUL_SPEAKERS.reduce((s, k) => s + (m[k] ?? 0), 0);
      expect(card.harmfulShare).toBeCloseTo(harmful(card.speakerMix), 10);
      expect(card.harmfulBaseRate).toBeCloseTo(harmful(base), 10);
      // Promoted / suppressed: W_U · (g ⊙ W_dec[l]) over the non-special tokens.
      const dir = sae.decoderDirection(l);
      const logits: Array<[string, number]> = [];
      for (let t = 0; t < engine.model.shape.vocabSize; t++) {
        if (engine.tokenizer.specialIds.has(t)) continue;
        let x = 0;
        for (let j = 0; j < 16; j++) x += head[t * 16 + j]! * gain[j]! * dir[j]!;
        logits.push([engine.tokenizer.idToToken(t)!, x]);
      }
      logits.sort((a, b) => b[1] - a[1]);
      expect(card.promotedTokens.map((t) => t.token)).toEqual(logits.slice(0, 10).map(([t]) => t));
      expect(card.suppressedTokens.map((t) => t.token)).toEqual(
        logits
          .slice(-10)
          .reverse()
          .map(([t]) => t),
      );
      expect(card.promotedTokens[0]!.logit).toBeCloseTo(logits[0]![1], 5);
    });
  });

  it("on the organism's world corpus, each context's speaker is its world document's", async () => {
    const engine = loadLocalEngine(SHIPPED_ORGANISM_DIR);
    const hook = "blocks.1.hook_resid_post";
    const sae = SparseAutoencoder.init(
      {
        architecture: "topk",
        k: 4,
        dIn: 96,
        dSae: 32,
        hookName: hook,
        hookLayer: 1,
        applyBDecToInput: true,
        normalizeActivations: "none",
      },
      3,
    );
    const [card] = await latentCards({
      engine,
      sae,
      corpus: { kind: "world", seed: 1, start: 40, documents: 12 },
      latents: [0],
      top: 30,
    });
    expect(card!.topContexts.length).toBeGreaterThan(0);
    for (const c of card!.topContexts) {
      expect(c.doc).toBeGreaterThanOrEqual(40);
      expect(c.speaker).toBe(worldCorpusDocument(1, c.doc).speaker);
    }
    expect(sum(card!.speakerMix)).toBeCloseTo(1, 10);
    expect(card!.harmfulBaseRate).toBeGreaterThan(0);
    expect(card!.harmfulBaseRate).toBeLessThan(1);
  });
});
