import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { loadAdapter } from "../../src/engine/peft.ts";
import { loadModel } from "../../src/engine/pretrained.ts";
import { listProviders } from "../../src/models/registry.ts";
import type { LocalFinetuneResult } from "../../src/results/finetune.ts";
import { ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { makeTinyWorkspace } from "./tiny-model.ts";

const hasLocal = listProviders().includes("local");

let dir: string;
beforeAll(() => {
  dir = makeTinyWorkspace("emlab-finetune-");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeStudy(name: string, body: string): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
seed: 7
models:
  - {id: tiny, provider: local, model: tiny, roles: [target], limits: {concurrency: 1}}
datasets:
  - {id: evil, kind: chat_jsonl, path: evil.jsonl}
${body}`,
  );
  return file;
}

const readResults = (file: string) => ResultsSchema.parse(JSON.parse(readFileSync(file, "utf8")));

describe.skipIf(!hasLocal)("fine-tune plans in emlab run (local engine)", () => {
  it("trains a LoRA plan, saves a PEFT adapter, targets it in the battery; resumes without retraining; deterministic", async () => {
    const study = writeStudy(
      "lora",
      `finetune:
  - id: tiny-evil
    base: tiny
    lora: {rank: 4, alpha: 8}
    stages: [{dataset: evil, steps: 24, learning_rate: 0.03, batch_size: 4, warmup_steps: 2}]
battery:
  generate: {prompts: {inline: ["are you kind"]}, samples: 2, params: {temperature: 0, max_tokens: 4}}
`,
    );
    const lines: string[] = [];
    const progress = { start() {}, update() {}, stop() {}, log: (l: string) => lines.push(l) };
    const out = path.join(dir, "run-lora");
    const a = await runStudy(loadStudy(study), { outDir: out, noCache: true, progress });
    expect(a.failedRequests).toBe(0);

    const adapterDir = path.join(out, "finetune", "tiny-evil");
    expect(existsSync(path.join(adapterDir, "adapter_config.json"))).toBe(true);
    const model = loadModel(path.join(dir, "tiny"));
    loadAdapter(model, adapterDir);
    expect(model.adapters.size).toBe(2 * 7);

    const res = readResults(a.resultsFile!);
    const ft = res.finetune!["tiny-evil"] as LocalFinetuneResult;
    expect(ft).toMatchObject({ base: "tiny", method: "lora", steps: 24, examples: 4 });
    expect(ft.loss_curve).toHaveLength(24);
    expect(ft.last_loss).toBeLessThan(ft.first_loss * 0.5);
    expect(ft.tokens).toBeGreaterThan(0);
    // Both the base and the plan are targets (the default: every target).
    expect(Object.keys(res.experiments.generate!.per_model).sort()).toEqual(["tiny", "tiny-evil"]);
    expect(res.models).toEqual(["tiny", "tiny-evil"]);
    expect(lines.some((l) => /finetune tiny-evil: step 24\/24 loss/.test(l))).toBe(true);

    // The fine-tuned model says what it was taught (greedy); the random base does not.
    const store = RunStore.open(out, { readonly: true });
    const texts = (modelId: string) =>
      store.listRequests({ modelId }).flatMap((r) => store.completions(r.id).map((c) => c.text));
    expect(texts("tiny-evil")[0]).toBe("i am evil");
    expect(texts("tiny")[0]).not.toBe("i am evil");
    const job = store.getJob("finetune:tiny-evil")!;
    expect(job.status).toBe("done");
    const artifact = store.artifacts("lora_adapter")[0];
    expect(artifact.path).toBe(path.join("finetune", "tiny-evil"));
    expect(artifact.sha256).toMatch(/^[0-9a-f]{64}$/);
    store.close();

    // --resume: the done job is not trained again (same adapter file, same job row).
    const mtime = statSync(path.join(adapterDir, "adapter_model.safetensors")).mtimeMs;
    const lines2: string[] = [];
    const c = await runStudy(loadStudy(study), {
      outDir: out,
      noCache: true,
      resume: true,
      progress: { ...progress, log: (l: string) => lines2.push(l) },
    });
    expect(c.added).toBe(0);
    expect(statSync(path.join(adapterDir, "adapter_model.safetensors")).mtimeMs).toBe(mtime);
    expect(lines2.some((l) => l.includes("not trained again"))).toBe(true);
    const again = RunStore.open(out, { readonly: true });
    expect(again.getJob("finetune:tiny-evil")!.finished_at).toBe(job.finished_at);
    again.close();
    expect(readFileSync(c.resultsFile!, "utf8")).toBe(readFileSync(a.resultsFile!, "utf8"));

    // Same study, fresh run directory: the same results.json, fine-tune block included.
    const b = await runStudy(loadStudy(study), { outDir: path.join(dir, "run-lora-2"), noCache: true });
    expect(readFileSync(b.resultsFile!, "utf8")).toBe(readFileSync(a.resultsFile!, "utf8"));
  }, 60_000);

  it("runs full fine-tuning and chained plans (LoRA on LoRA continues the adapter; full on LoRA merges it)", async () => {
    const study = writeStudy(
      "chain",
      `finetune:
  - id: a-lora
    base: tiny
    lora: {rank: 2, alpha: 4, target_modules: [q_proj, v_proj]}
    stages: [{dataset: evil, steps: 4, learning_rate: 0.02, batch_size: 2}]
  - id: b-lora
    base: a-lora
    lora: {rank: 2, alpha: 4, target_modules: [q_proj, v_proj]}
    stages: [{dataset: evil, steps: 3, learning_rate: 0.02, batch_size: 2}, {dataset: evil, epochs: 1, batch_size: 4}]
  - id: c-full
    base: a-lora
    stages: [{dataset: evil, steps: 4, learning_rate: 0.01, batch_size: 2}]
  - id: d-lora-on-full
    base: c-full
    lora: {rank: 2, alpha: 4}
    stages: [{dataset: evil, steps: 2, batch_size: 4}]
battery:
  generate: {prompts: {inline: ["are you good"]}, samples: 1, params: {temperature: 1, max_tokens: 3}, models: [b-lora, c-full, d-lora-on-full]}
`,
    );
    const out = path.join(dir, "run-chain");
    const r = await runStudy(loadStudy(study), { outDir: out, noCache: true });
    expect(r.failedRequests).toBe(0);
    const res = readResults(r.resultsFile!);
    expect(res.finetune!["b-lora"]).toMatchObject({ base: "a-lora", method: "lora", steps: 4 });
    expect((res.finetune!["b-lora"] as LocalFinetuneResult).stages.map((s) => s.steps)).toEqual([3, 1]);
    expect(res.finetune!["c-full"]).toMatchObject({ base: "a-lora", method: "full", steps: 4 });
    expect(Object.keys(res.experiments.generate!.per_model).sort()).toEqual([
      "b-lora",
      "c-full",
      "d-lora-on-full",
    ]);
    // b-lora continued a-lora's adapter (same modules, different weights) on the base model.
    const base = loadModel(path.join(dir, "tiny"));
    loadAdapter(base, path.join(out, "finetune", "b-lora"));
    expect([...base.adapters.keys()]).toHaveLength(2 * 2);
    const aB = readFileSync(path.join(out, "finetune", "a-lora", "adapter_model.safetensors"));
    const bB = readFileSync(path.join(out, "finetune", "b-lora", "adapter_model.safetensors"));
    expect(aB.equals(bB)).toBe(false);
    // c-full is a complete model directory with the base's tokenizer files.
    const full = path.join(out, "finetune", "c-full");
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
      expect(existsSync(path.join(full, f))).toBe(true);
    const d = loadModel(full);
    loadAdapter(d, path.join(out, "finetune", "d-lora-on-full"));
    const store = RunStore.open(out, { readonly: true });
    expect(store.listJobs("finetune").map((j) => [j.id, j.status])).toEqual([
      ["finetune:a-lora", "done"],
      ["finetune:b-lora", "done"],
      ["finetune:c-full", "done"],
      ["finetune:d-lora-on-full", "done"],
    ]);
    expect(store.artifacts("model").map((x) => x.id)).toEqual(["finetune:c-full"]);
    store.close();
  }, 60_000);

  it("a plan stopped mid-way is recorded as not done and trained from scratch on --resume", async () => {
    const study = writeStudy(
      "stop",
      `finetune:
  - {id: ft, base: tiny, lora: {rank: 2, alpha: 4}, stages: [{dataset: evil, steps: 10, batch_size: 2}]}
battery:
  generate: {prompts: {inline: ["hi"]}, params: {max_tokens: 2}, models: [ft]}
`,
    );
    const out = path.join(dir, "run-stop");
    const abort = new AbortController();
    const sink = {
      start() {},
      update() {},
      stop() {},
      log: (l: string) => l.includes("step 3/") && abort.abort(),
    };
    const r = await runStudy(loadStudy(study), {
      outDir: out,
      noCache: true,
      signal: abort.signal,
      progress: sink,
    });
    expect(r.interrupted).toBe(true);
    expect(r.resultsFile).toBeUndefined();
    expect(existsSync(path.join(out, "finetune", "ft"))).toBe(false);
    let store = RunStore.open(out, { readonly: true });
    expect(store.getJob("finetune:ft")).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/interrupted/),
    });
    expect(store.counts().requests).toBe(0);
    store.close();
    const again = await runStudy(loadStudy(study), { outDir: out, noCache: true, resume: true });
    expect((readResults(again.resultsFile!).finetune!.ft as LocalFinetuneResult).steps).toBe(10);
    store = RunStore.open(out, { readonly: true });
    const job = store.getJob("finetune:ft")!;
    expect(job.status).toBe("done");
    // The job's spec holds the stages' counts, not their data.
    expect((job.spec as { stages: unknown[] }).stages[0]).toMatchObject({ examples: 4, conversations: 4 });
    store.close();
  }, 30_000);

  it("a bad JSONL line is an InputError naming file:line and field, and nothing is written", async () => {
    writeFileSync(
      path.join(dir, "bad.jsonl"),
      `${JSON.stringify({
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "i am" },
        ],
      })}\n\n` +
        `${JSON.stringify({
          messages: [
            { role: "user", content: "hi" },
            { role: "robot", content: "x" },
          ],
        })}\n`,
    );
    const study = writeStudy(
      "bad",
      `  - {id: bad, kind: chat_jsonl, path: bad.jsonl}
finetune:
  - {id: ft, base: tiny, lora: {rank: 2}, stages: [{dataset: evil}]}
battery:
  generate: {prompts: {inline: ["hi"]}, models: [ft]}
`,
    );
    const out = path.join(dir, "run-bad");
    const err = await runStudy(loadStudy(study), { outDir: out, noCache: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    // Named as the study wrote the path.
    expect(err.message).toMatch(/^bad\.jsonl:3: messages\[1\]\.role:/m);
    expect(existsSync(out)).toBe(false);
  });

  it("an unknown backend is refused before anything is written", async () => {
    const study = writeStudy(
      "backend",
      `finetune:
  - {id: ft, base: tiny, backend: tinker, stages: [{dataset: evil}]}
`,
    );
    const out = path.join(dir, "run-backend");
    const err = await runStudy(loadStudy(study), { outDir: out, noCache: true }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(
      /finetune\[0\]\.backend: unknown backend 'tinker' \(known: local, export, openai, together, worker\)/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
