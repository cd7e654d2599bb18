/**
 * An interp section registered from a file outside src/ (test/fixtures/plugins/answer-lengths.ts)
 * is validated under `interp.<name>`, runs after the battery on the study's local model with
 * its generations stored through the scheduler, lands in results.json's interp block and is
 * drawn in the report's interp section; a second invocation asks nothing again.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import { writeReport } from "../../src/report/index.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { registeredResultsSchema, registerInterpSection, runStudy } from "../../src/study/index.ts";
import { answerLengths } from "../fixtures/plugins/answer-lengths.ts";
import { tmpDir } from "../runs/support.ts";
import { saveTinyModel } from "../support/tiny-model.ts";

const study = (interp: string) => `name: plugin-interp
seed: 3
models:
  - {id: base, provider: local, model: ./base}
  - {id: remote, provider: openai-compatible, model: x, base_url: "http://127.0.0.1:9/v1"}
interp:
${interp}`;

const problems = (text: string) => {
  try {
    parseStudy(text, "s.yaml");
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => `${p.field}: ${p.message}`);
    throw e;
  }
  return [];
};

describe("an interp section registered from outside src/", () => {
  it("is validated under interp.<name> once registered", () => {
    expect(problems(study("  answer_lengths: {models: [base], prompts: [hi]}\n"))).toEqual([
      expect.stringMatching(/^interp.answer_lengths: /),
    ]);
    registerInterpSection(answerLengths);
    expect(problems(study("  answer_lengths: {models: [base], prompts: [hi]}\n"))).toEqual([]);
    expect(problems(study("  answer_lengths: {models: [remote, ghost], prompts: []}\n"))).toEqual(
      expect.arrayContaining([
        "interp.answer_lengths.prompts: Too small: expected array to have >=1 items",
        "interp.answer_lengths.models[0]: 'remote' is not a local model",
        "interp.answer_lengths.models[1]: unknown model id 'ghost'",
      ]),
    );
  });

  it("runs through the store, lands in results.json's interp block and the report, and resumes without asking again", async () => {
    const dir = tmpDir("plugin-interp");
    saveTinyModel(path.join(dir, "base"), 7);
    const file = path.join(dir, "study.yaml");
    writeFileSync(
      file,
      study("  answer_lengths: {models: [base], prompts: [what do you think, i am], samples: 3}\n"),
    );
    const out = path.join(dir, "run");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true });
    expect(r.incomplete).toBeUndefined();
    expect(r.resultsFile).toBeDefined();
    const text = readFileSync(path.join(out, RESULTS_FILE), "utf8");
    const results = registeredResultsSchema().parse(JSON.parse(text));
    const block = results.interp?.answer_lengths as { per_model: Record<string, { answers: number }> };
    expect(block.per_model.base.answers).toBe(6);

    const store = RunStore.open(out);
    const rows = store.listRequests({ experiment: "interp.answer_lengths" });
    const completions = rows.flatMap((q) => store.completions(q.id));
    store.close();
    expect(rows).toHaveLength(2);
    expect(completions).toHaveLength(6);

    const page = readFileSync((await writeReport(out)).file, "utf8");
    expect(page).toContain(
      '<section id="interp-answer_lengths" class="plugin"><h3>Answer lengths (plugin section)</h3>',
    );
    expect(page).toContain("<li>base: 6 answers</li>");

    // Resumed, the section's stored generations are not asked again: same results, same rows.
    const again = await runStudy(loadStudy(file), { outDir: out, noCache: true, resume: true });
    expect(again.added).toBe(0);
    expect(readFileSync(path.join(out, RESULTS_FILE), "utf8")).toBe(text);
  });
});
