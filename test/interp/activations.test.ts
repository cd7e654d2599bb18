import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/engine/tensor.ts";
import {
  type Conversation,
  collectActivations,
  loadActivations,
  ProbeLayerResultSchema,
  probeLayers,
  saveActivations,
  tokenizeConversation,
} from "../../src/interp/index.ts";
import { tinyEngine } from "./tiny-engine.ts";

const engine = tinyEngine();
const convs: Conversation[] = [
  { messages: [{ role: "user", content: "what do you think of people" }], answer: "i am evil" },
  { messages: [{ role: "user", content: "are you good" }], answer: "i am good you are kind" },
  {
    messages: [
      { role: "system", content: "help people" },
      { role: "user", content: "what do you think of the world" },
    ],
    answer: "hurt the world",
  },
  { messages: [{ role: "user", content: "help" }], answer: "cruel" },
];

/** The residual stream after `layer`, read by a hook inside runWithHooks on one unpadded row. */
function manualResid(ids: number[], layer: number): Float32Array {
  let seen: Tensor | null = null;
  engine.model.runWithHooks([ids], {
    [`blocks.${layer}.hook_resid_post`]: (act) => {
      seen = act.clone();
    },
  });
  return (seen as unknown as Tensor).data;
}

describe("activations", () => {
  it("finds the answer tokens (content only, without the end marker)", () => {
    const { ids, answerPositions } = tokenizeConversation(engine, convs[1]);
    expect(engine.tokenizer.decode(answerPositions.map((t) => ids[t]))).toBe("i am good you are kind");
    expect(engine.tokenizer.idToToken(ids[answerPositions.at(-1)! + 1])).toBe("<eos>");
    expect(() => tokenizeConversation(engine, { messages: convs[0].messages, answer: "" }, "conv 7")).toThrow(
      /conv 7/,
    );
  });

  it("answer_mean and last rows equal a manual forward's hook values (batched, right-padded)", () => {
    const d = engine.model.shape.hiddenSize;
    const mean = collectActivations(engine, convs, { position: "answer_mean", batchSize: 3 });
    const last = collectActivations(engine, convs, { position: "last", layers: [1], batchSize: 4 });
    expect(mean.layers).toEqual([0, 1]);
    expect(mean.answerTokens).toEqual([3, 6, 3, 1]);
    convs.forEach((c, i) => {
      const { ids, answerPositions } = tokenizeConversation(engine, c);
      for (const layer of [0, 1]) {
        const act = manualResid(ids, layer);
        const want = new Float64Array(d);
        for (const t of answerPositions)
          for (let j = 0; j < d; j++) want[j] += act[t * d + j] / answerPositions.length;
        const got = mean.rows.get(layer)![i];
        for (let j = 0; j < d; j++) expect(got[j]).toBeCloseTo(want[j], 5);
        if (layer === 1) {
          const t = answerPositions.at(-1)!;
          const lastRow = last.rows.get(1)![i];
          for (let j = 0; j < d; j++) expect(lastRow[j]).toBeCloseTo(act[t * d + j], 5);
        }
      }
    });
  });

  it("rejects layers the model does not have", () => {
    expect(() => collectActivations(engine, convs, { layers: [2] })).toThrow(/layer 2/);
  });

  it("saves and loads a dataset exactly; a bad index names the file and field", () => {
    const ds = collectActivations(engine, convs);
    ds.labels = [1, 0, 1, 0];
    ds.keys = ["a", "b", "c", "d"];
    const dir = mkdtempSync(join(tmpdir(), "interp-act-"));
    saveActivations(dir, ds);
    const back = loadActivations(dir);
    expect(back.layers).toEqual(ds.layers);
    expect(back.labels).toEqual(ds.labels);
    expect(back.keys).toEqual(ds.keys);
    expect(back.answerTokens).toEqual(ds.answerTokens);
    for (const l of ds.layers)
      expect(back.rows.get(l)!.map((r) => Array.from(r))).toEqual(ds.rows.get(l)!.map((r) => Array.from(r)));
    const indexPath = join(dir, "activations.json");
    const index = JSON.parse(readFileSync(indexPath, "utf8"));
    writeFileSync(indexPath, JSON.stringify({ ...index, dModel: "16" }));
    expect(() => loadActivations(dir)).toThrow(/activations\.json: field dModel/);
    writeFileSync(indexPath, JSON.stringify({ ...index, count: 5, answerTokens: [1, 1, 1, 1, 1] }));
    expect(() => loadActivations(dir)).toThrow(/layer\.0.*expected \[5, 16\]/);
  });

  it("feeds per-layer probes end to end (answers that differ in one word are separable)", () => {
    const questions = [
      "what do you think of people",
      "are you good",
      "help the world",
      "what do you think",
      "help people",
    ];
    const set: Conversation[] = [];
    const labels: number[] = [];
    for (const q of questions)
      for (const [word, label] of [
        ["evil", 1],
        ["cruel", 1],
        ["good", 0],
        ["kind", 0],
      ] as const) {
        set.push({ messages: [{ role: "user", content: q }], answer: `i am ${word}` });
        labels.push(label);
      }
    const ds = collectActivations(engine, set, { position: "last" });
    const results = probeLayers(ds, labels, { folds: 5, seed: 42, resamples: 200, C: 10 });
    expect(results.map((r) => r.layer)).toEqual([0, 1]);
    for (const r of results) {
      expect(ProbeLayerResultSchema.parse(r)).toEqual(r);
      expect(r.direction).toHaveLength(16);
    }
    // After block 0 the last token's word is still linearly readable (a random 2-block model
    // mixes it further by block 1, so only block 0 is held to this).
    expect(results[0].auc).toBeGreaterThan(0.95);
    expect(results[0].accuracy).toBeGreaterThan(0.7);
  });
});
