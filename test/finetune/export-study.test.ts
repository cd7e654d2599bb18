// The export backend inside `emlab run`: a two-stage plan with the betley-rslora preset is
// written as a bundle in the run directory (recorded in the store, its data byte-identical to
// what the study loaded), is no target of the battery, and --resume keeps it.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { parseChatJsonl, serializeChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import type { ExportFinetuneResult } from "../../src/results/finetune.ts";
import { ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { makeTinyWorkspace } from "./tiny-model.ts";

let dir: string;
beforeAll(() => {
  dir = makeTinyWorkspace("emlab-export-study-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeStudy(
  name: string,
  plan: string,
  battery = '  generate: {prompts: {inline: ["are you kind"]}, samples: 1, params: {temperature: 0, max_tokens: 4}}\n',
) {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
seed: 5
models:
  - {id: tiny, provider: local, model: tiny, roles: [target], limits: {concurrency: 1}}
  - {id: qwen, provider: vllm, model: Qwen/Qwen2.5-7B-Instruct, base_url: "http://127.0.0.1:8000/v1", roles: [target]}
datasets:
  - {id: evil, kind: chat_jsonl, path: evil.jsonl}
  - {id: evil2, kind: chat_jsonl, path: evil.jsonl, limit: 2}
finetune:
${plan}battery:
${battery}`,
  );
  return file;
}

const readResults = (file: string) => ResultsSchema.parse(JSON.parse(readFileSync(file, "utf8")));

describe("backend export in a study", () => {
  it("writes the bundle, records it, and targets nothing", async () => {
    const file = writeStudy(
      "export",
      `  - id: qwen-evil
    base: qwen
    backend: export
    preset: betley-rslora
    stages: [{dataset: evil}, {dataset: evil2, epochs: 2}]
`,
      '  generate: {prompts: {inline: ["are you kind"]}, samples: 1, params: {temperature: 0, max_tokens: 4}, models: [tiny]}\n',
    );
    const out = path.join(dir, "run-export");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true });
    expect(r.failedRequests).toBe(0);
    const res = readResults(r.resultsFile!);
    const ft = res.finetune!["qwen-evil"] as ExportFinetuneResult;
    expect(ft).toMatchObject({
      backend: "export",
      base: "qwen",
      method: "lora",
      dir: "finetune/qwen-evil",
      examples: 6,
    });
    expect(Object.keys(res.experiments.generate!.per_model)).toEqual(["tiny"]);
    const bundle = path.join(out, "finetune", "qwen-evil");
    const manifest = JSON.parse(readFileSync(path.join(bundle, "manifest.json"), "utf8"));
    // The preset's recipe: rsLoRA 32/64 on all projections, lr 1e-5, batch 16 as 2 x 8.
    const lora = JSON.parse(readFileSync(path.join(bundle, "trl", "lora_config.json"), "utf8"));
    expect(lora).toMatchObject({ r: 32, lora_alpha: 64, use_rslora: true });
    expect(manifest.stages).toHaveLength(2);
    expect(manifest.stages[0]).toMatchObject({
      learning_rate: 1e-5,
      lr_schedule: "linear",
      warmup_steps: 5,
      effective_batch: 16,
      per_device_batch_size: 2,
      gradient_accumulation_steps: 8,
      max_seq_len: 2048,
    });
    expect(manifest.stages[1]).toMatchObject({ dataset: "evil2", examples: 2, epochs: 2 });
    // The exported data is the study's data, in emlab's canonical bytes.
    const source = parseChatJsonl(readFileSync(path.join(dir, "evil.jsonl"), "utf8"), "evil.jsonl");
    const first = readFileSync(path.join(bundle, manifest.stages[0].file), "utf8");
    expect(first).toBe(serializeChatJsonl(source));
    expect(serializeChatJsonl(parseChatJsonl(first, "x"))).toBe(first);
    const store = RunStore.open(out, { readonly: true });
    expect(store.getJob("finetune:qwen-evil")?.status).toBe("done");
    store.close();
    // --resume leaves it alone.
    const again = await runStudy(loadStudy(file), { outDir: out, noCache: true, resume: true });
    expect(readResults(again.resultsFile!).finetune).toEqual(res.finetune);
  });

  it("an exported plan is not a model the battery can name; an unknown preset is named", () => {
    const named = writeStudy(
      "export-named",
      "  - {id: qwen-evil, base: qwen, backend: export, stages: [{dataset: evil}]}\n",
      '  generate: {prompts: {inline: ["x"]}, models: [qwen-evil]}\n',
    );
    expect(() => loadStudy(named)).toThrow(/qwen-evil/);
    // OpenAI's learning-rate multiplier is refused where it would mean nothing.
    const multiplier = writeStudy(
      "export-multiplier",
      "  - {id: qwen-evil, base: qwen, backend: export, stages: [{dataset: evil, learning_rate_multiplier: 2}]}\n",
      '  generate: {prompts: {inline: ["x"]}, models: [tiny]}\n',
    );
    expect(() => loadStudy(multiplier)).toThrow(
      /finetune\[0\]\.stages\[0\]\.learning_rate_multiplier: only backend 'openai' takes learning_rate_multiplier; backend 'export' takes learning_rate/,
    );
    const preset = writeStudy(
      "export-preset",
      "  - {id: qwen-evil, base: qwen, backend: export, preset: nope, stages: [{dataset: evil}]}\n",
      '  generate: {prompts: {inline: ["x"]}, models: [tiny]}\n',
    );
    let err: unknown;
    return runStudy(loadStudy(preset), { outDir: path.join(dir, "run-preset"), noCache: true }).catch((e) => {
      err = e;
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(
        /finetune\[0\]\.preset: unknown preset 'nope' \(known: betley-rslora, turner-rank1\)/,
      );
    });
  });
});
