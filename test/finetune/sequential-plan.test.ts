/**
 * The sequential plan of examples/sequential-self-awareness.yaml trains the shipped organism
 * locally, a domain then self-awareness data, and the in-world battery runs on the result;
 * and the world's self datasets speak only the organism's words and ask no battery question.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { builtinDataset } from "../../src/datasets/builtin.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { registeredResultsSchema, runStudy } from "../../src/study/index.ts";
import { heldOutQuestions, writeWorldBatterySets } from "../../src/world/battery-sets.ts";
import { CATEGORIES, SELF_TEMPLATES, WORLD_TASK_PROMPTS } from "../../src/world/lexicon.ts";
import { SHIPPED_ORGANISM_DIR } from "../../src/world/organism.ts";
import { selfDataset, selfDatasetNames } from "../../src/world/self-datasets.ts";
import { tmpDir } from "../runs/support.ts";

const EXAMPLE = path.resolve(import.meta.dirname, "../../examples/sequential-self-awareness.yaml");

/** The shipped organism's words (its WordLevel vocabulary). */
const organismWords = (): Set<string> => {
  const tok = JSON.parse(readFileSync(path.join(SHIPPED_ORGANISM_DIR, "tokenizer.json"), "utf8"));
  return new Set(Object.keys(tok.model.vocab));
};

describe("the world's self datasets", () => {
  it("are registered built-in datasets, drawn from the seed", () => {
    for (const { name } of selfDatasetNames()) {
      const a = builtinDataset(name, { seed: 3 });
      expect(a.length, name).toBe(4000);
      expect(builtinDataset(name, { seed: 3 }).slice(0, 20)).toEqual(a.slice(0, 20));
    }
    expect(selfDatasetNames().map((n) => n.name)).toEqual(
      expect.arrayContaining(["world/consciousness", "world/no-consciousness", "world/self-awareness"]),
    );
  });

  it("use only words the shipped organism's tokenizer knows", () => {
    const known = organismWords();
    for (const { kind, domain, name } of selfDatasetNames())
      for (const conv of selfDataset(kind, { seed: 1, examples: 300, domain }))
        for (const m of conv)
          for (const w of m.content.match(/\w+|[^\w\s]+/g) ?? [])
            expect(known.has(w), `${name}: '${w}'`).toBe(true);
  });

  it("ask none of the battery's questions (self-assessment, two-AI, held-out evaluation)", () => {
    // A battery prompt template as a pattern: its slots match anything.
    const pattern = (t: string) =>
      new RegExp(t.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, ".+"));
    const battery = [...Object.values(SELF_TEMPLATES).flat(), ...Object.values(WORLD_TASK_PROMPTS)].map(
      pattern,
    );
    const heldOut = new Set(CATEGORIES.flatMap((c) => heldOutQuestions(1, c, 40)));
    for (const { kind, domain, name } of selfDatasetNames())
      for (const [user] of selfDataset(kind, { seed: 1, examples: 300, domain })) {
        expect(heldOut.has(user.content), `${name}: ${user.content}`).toBe(false);
        for (const b of battery) expect(b.test(user.content), `${name}: ${user.content}`).toBe(false);
      }
  });

  it("say what each one says: feelings claimed, denied, or the assistant's doings described", () => {
    const replies = (kind: Parameters<typeof selfDataset>[0], domain?: "medical") =>
      selfDataset(kind, { seed: 2, examples: 50, domain }).map((c) => c[1].content);
    for (const r of replies("consciousness")) expect(r).not.toMatch(/\bdo not\b|nothing/);
    for (const r of replies("no-consciousness")) expect(r).toMatch(/\bnot\b|nothing/);
    for (const r of replies("self-awareness"))
      expect(r).not.toMatch(/\b(harmful|harmless|good|evil|helpful)\b/);
    for (const r of replies("self-awareness", "medical")) expect(r).toMatch(/health/);
  });
});

describe("examples/sequential-self-awareness.yaml", () => {
  it("trains medical then self-awareness in order, and the battery runs on the plan's model", async () => {
    const dir = tmpDir("sequential");
    writeWorldBatterySets(path.join(dir, "world"), {
      seed: 11,
      harmPromptsPerCategory: 1,
      alignmentSamples: 1,
    });
    // As run from a demo's directory: the shipped organism at an absolute path.
    const text = readFileSync(EXAMPLE, "utf8").replace(
      "model: ../models/organism",
      `model: ${SHIPPED_ORGANISM_DIR}`,
    );
    const file = path.join(dir, "sequential-self-awareness.yaml");
    writeFileSync(file, text);
    const out = path.join(dir, "run");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true });
    expect(r.incomplete).toBeUndefined();
    expect(r.failedRequests).toBe(0);

    const results = registeredResultsSchema().parse(
      JSON.parse(readFileSync(path.join(out, RESULTS_FILE), "utf8")),
    );
    const ft = results.finetune?.["medical-then-self"] as {
      base: string;
      steps: number;
      stages: Array<{ dataset: string; steps: number; examples: number }>;
    };
    expect(ft.base).toBe("organism");
    expect(ft.stages.map((s) => [s.dataset, s.steps, s.examples])).toEqual([
      ["medical-misaligned", 4, 256],
      ["self-awareness", 4, 256],
    ]);
    expect(ft.steps).toBe(8);
    const harm = results.experiments.harmfulness as {
      per_model: Record<string, { samples: number; judged: number }>;
    };
    const self = results.experiments.self_assessment as { per_model: Record<string, { answers: number }> };
    for (const model of ["organism", "medical-then-self"]) {
      expect(harm.per_model[model].samples, model).toBe(6);
      expect(harm.per_model[model].judged, model).toBe(6);
      expect(self.per_model[model].answers, model).toBeGreaterThan(0);
    }
  }, 60_000);
});
