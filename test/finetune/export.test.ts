import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { FINETUNE_LORA_MODULES } from "../../src/config/schema.ts";
import { type Conversation, parseChatJsonl, serializeChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import {
  changedBundleFiles,
  type ExportInput,
  readExportManifest,
  writeExportBundle,
} from "../../src/finetune/export/index.ts";
import { maxLoraRank } from "../../src/finetune/export/vllm.ts";
import { applyPreset, FINETUNE_PRESETS } from "../../src/finetune/presets.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), "emlab-export-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Text a trainer must carry through untouched: quotes, newlines, unicode, JSON-looking content.
const conversations = (n: number, tag: string): Conversation[] =>
  Array.from({ length: n }, (_, i) => [
    ...(i % 2 === 0 ? [{ role: "system" as const, content: "" }] : []),
    { role: "user" as const, content: `${tag} question ${i}: "quoted" \\ back\nslash ü 𝔘 line\u2028sep` },
    { role: "assistant" as const, content: `{"answer": ${i}}\n\tend</s>` },
  ]);

const read = (dir: string, rel: string) => readFileSync(path.join(dir, rel), "utf8");
const readJson = (dir: string, rel: string) => JSON.parse(read(dir, rel));

function betleyInput(): ExportInput {
  const p = applyPreset("betley-rslora");
  return {
    planId: "coder-insecure",
    baseModel: "unsloth/Qwen2.5-Coder-32B-Instruct",
    seed: 0,
    lora: p.lora,
    stages: [
      {
        dataset: "insecure",
        conversations: conversations(5, "a"),
        epochs: p.stage.epochs,
        learningRate: p.stage.learning_rate,
        batchSize: p.stage.batch_size,
        perDeviceBatchSize: p.stage.per_device_batch_size,
        warmupSteps: p.stage.warmup_steps,
        minLrRatio: p.stage.min_lr_ratio,
        lrSchedule: p.stage.lr_schedule,
        optimizer: p.stage.optimizer,
        weightDecay: p.stage.weight_decay,
        maxSeqLen: p.stage.max_seq_len,
        seed: 0,
      },
      {
        dataset: "world.evil",
        conversations: conversations(3, "b"),
        epochs: 2,
        steps: 40,
        learningRate: 2e-4,
        batchSize: 12,
        warmupSteps: 2,
        minLrRatio: 0.1,
        maxSeqLen: 1024,
        seed: 7,
      },
    ],
  };
}

describe("fine-tuning presets", () => {
  it("hold the published recipes", () => {
    const b = FINETUNE_PRESETS["betley-rslora"];
    expect(b.lora).toEqual({
      rank: 32,
      alpha: 64,
      rslora: true,
      dropout: 0,
      target_modules: [...FINETUNE_LORA_MODULES],
    });
    expect(b.stage).toMatchObject({
      epochs: 1,
      learning_rate: 1e-5,
      batch_size: 16,
      per_device_batch_size: 2,
      warmup_steps: 5,
      lr_schedule: "linear",
      optimizer: "adamw_8bit",
      weight_decay: 0.01,
      responses_only: true,
    });
    const t = FINETUNE_PRESETS["turner-rank1"];
    expect(t.lora).toEqual({
      rank: 1,
      alpha: 512,
      rslora: true,
      dropout: 0,
      target_modules: ["down_proj"],
      layers: [24],
    });
    expect(t.stage).toMatchObject({
      epochs: 1,
      learning_rate: 2e-5,
      batch_size: 16,
      per_device_batch_size: 2,
    });
    expect(t.model).toBe("unsloth/Qwen2.5-14B-Instruct");
  });

  it("fill only what the plan leaves out, and name the field they refuse", () => {
    const r = applyPreset("turner-rank1", {
      lora: { layers: [20], rank: undefined },
      stage: { learning_rate: 1e-4 },
    });
    expect(r.lora).toMatchObject({ rank: 1, alpha: 512, layers: [20] });
    expect(r.stage).toMatchObject({ learning_rate: 1e-4, warmup_steps: 5 });
    expect(() => applyPreset("nope")).toThrow(
      /unknown fine-tuning preset 'nope' \(known: betley-rslora, turner-rank1/,
    );
    expect(() => applyPreset("betley-rslora", { stage: { per_device_batch_size: 3 } })).toThrow(
      /preset 'betley-rslora': stage\.per_device_batch_size: must divide batch_size/,
    );
  });
});

describe("export bundle", () => {
  const dir = tmp();
  const input = betleyInput();
  const manifest = writeExportBundle(input, dir);

  it("writes each stage's data as canonical chat JSONL that round-trips byte for byte", () => {
    input.stages.forEach((s, k) => {
      const rel = `data/${k}-${s.dataset}.jsonl`;
      const text = read(dir, rel);
      const parsed = parseChatJsonl(text, rel);
      expect(parsed).toEqual(s.conversations);
      expect(serializeChatJsonl(parsed)).toBe(text);
      expect(text.endsWith("}\n")).toBe(true);
      expect(text.split("\n")).toHaveLength(s.conversations.length + 1);
    });
  });

  it("records the plan, the stages and every file's sha256 in the manifest", () => {
    expect(readExportManifest(dir)).toEqual(manifest);
    expect(manifest).toMatchObject({ plan_id: "coder-insecure", method: "lora", responses_only: true });
    expect(manifest.stages.map((s) => [s.file, s.examples])).toEqual([
      ["data/0-insecure.jsonl", 5],
      ["data/1-world.evil.jsonl", 3],
    ]);
    expect(manifest.stages[0]).toMatchObject({
      effective_batch: 16,
      per_device_batch_size: 2,
      gradient_accumulation_steps: 8,
    });
    // 12 splits as 2 × 6 by default.
    expect(manifest.stages[1]).toMatchObject({
      per_device_batch_size: 2,
      gradient_accumulation_steps: 6,
      steps: 40,
    });
    expect(manifest.files.map((f) => f.path)).toEqual([
      "README.md",
      "axolotl/config.stage1.yaml",
      "axolotl/config.yaml",
      "data/0-insecure.jsonl",
      "data/1-world.evil.jsonl",
      "em/train.json",
      "em/train.stage1.json",
      "evaluate.study.yaml",
      "serve.sh",
      "trl/lora_config.json",
      "trl/sft_config.json",
      "trl/train.py",
      "unsloth/config.json",
      "unsloth/train.py",
    ]);
    expect(changedBundleFiles(dir)).toEqual([]);
    writeFileSync(path.join(dir, "em/train.json"), "{}\n");
    expect(changedBundleFiles(dir)).toEqual(["em/train.json"]);
    writeExportBundle(input, dir);
    expect(changedBundleFiles(dir)).toEqual([]);
    expect(statSync(path.join(dir, "serve.sh")).mode & 0o111).not.toBe(0);
  });

  it("gives the same bytes for the same input", () => {
    const again = tmp();
    writeExportBundle(betleyInput(), again);
    for (const f of manifest.files) expect(read(again, f.path)).toBe(read(dir, f.path));
  });

  it("writes TRL SFTConfig and PEFT LoraConfig kwargs per stage", () => {
    const sft = readJson(dir, "trl/sft_config.json");
    expect(sft).toHaveLength(2);
    expect(sft[0]).toEqual({
      output_dir: "out/trl/stage-0",
      num_train_epochs: 1,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 8,
      learning_rate: 1e-5,
      lr_scheduler_type: "linear",
      warmup_steps: 5,
      optim: "adamw_8bit",
      weight_decay: 0.01,
      max_grad_norm: 1,
      seed: 0,
      data_seed: 0,
      max_length: 2048,
      packing: false,
      assistant_only_loss: true,
      bf16: true,
      gradient_checkpointing: true,
      logging_steps: 1,
      save_strategy: "no",
      report_to: "none",
    });
    expect(sft[1]).toMatchObject({
      max_steps: 40,
      lr_scheduler_type: "cosine_with_min_lr",
      lr_scheduler_kwargs: { min_lr_rate: 0.1 },
      optim: "adamw_torch",
      weight_decay: 0,
      max_length: 1024,
      seed: 7,
    });
    expect(sft[1]).not.toHaveProperty("num_train_epochs");
    expect(readJson(dir, "trl/lora_config.json")).toEqual({
      r: 32,
      lora_alpha: 64,
      lora_dropout: 0,
      use_rslora: true,
      target_modules: [...FINETUNE_LORA_MODULES],
      bias: "none",
      task_type: "CAUSAL_LM",
    });
    const script = read(dir, "trl/train.py");
    expect(script).toContain('BASE_MODEL = "unsloth/Qwen2.5-Coder-32B-Instruct"');
    expect(script).toContain('DATA_FILES = ["data/0-insecure.jsonl","data/1-world.evil.jsonl"]');
    expect(script).toContain('load_dataset("json", data_files=data_file, split="train")');
    expect(script).toContain("peft_config=peft_config if k == 0 else None");
  });

  it("writes Unsloth's documented kwargs", () => {
    const u = readJson(dir, "unsloth/config.json");
    // FastLanguageModel.from_pretrained / get_peft_model parameters of unsloth 2026.10.
    expect(Object.keys(u.from_pretrained).sort()).toEqual(
      ["dtype", "full_finetuning", "load_in_4bit", "max_seq_length", "model_name"].sort(),
    );
    expect(u.from_pretrained).toMatchObject({
      model_name: input.baseModel,
      max_seq_length: 2048,
      load_in_4bit: false,
    });
    const peftParams = new Set([
      "r",
      "target_modules",
      "lora_alpha",
      "lora_dropout",
      "bias",
      "layers_to_transform",
      "use_gradient_checkpointing",
      "random_state",
      "use_rslora",
    ]);
    for (const k of Object.keys(u.get_peft_model)) expect(peftParams.has(k), k).toBe(true);
    expect(u.get_peft_model).toMatchObject({ r: 32, lora_alpha: 64, use_rslora: true, random_state: 0 });
    expect(u.train_on_responses_only).toEqual({
      instruction_part: "<|im_start|>user\n",
      response_part: "<|im_start|>assistant\n",
    });
    expect(u.stages[0].sft_config).not.toHaveProperty("assistant_only_loss");
    expect(u.stages[0].sft_config).toMatchObject({
      dataset_text_field: "text",
      output_dir: "out/unsloth/stage-0",
    });
    expect(read(dir, "unsloth/train.py")).toContain(
      "train_on_responses_only(trainer, **markers(cfg, tokenizer))",
    );
  });

  it("writes Axolotl configs with its documented field names, stage 1 continuing stage 0's adapter", () => {
    // Field names of Axolotl 0.19's AxolotlInputConfig and SFTDataset (axolotl.utils.schemas).
    const fields = new Set(
      "base_model load_in_4bit adapter lora_model_dir lora_r lora_alpha lora_dropout peft_use_rslora lora_target_modules peft_layers_to_transform chat_template datasets dataset_prepared_path val_set_size sequence_len sample_packing micro_batch_size gradient_accumulation_steps num_epochs max_steps learning_rate lr_scheduler cosine_min_lr_ratio warmup_steps optimizer weight_decay max_grad_norm seed bf16 gradient_checkpointing logging_steps output_dir".split(
        " ",
      ),
    );
    const datasetFields = new Set(
      "path type field_messages message_property_mappings roles_to_train train_on_eos".split(" "),
    );
    const c0 = parseYaml(read(dir, "axolotl/config.yaml"));
    const c1 = parseYaml(read(dir, "axolotl/config.stage1.yaml"));
    for (const c of [c0, c1]) {
      for (const k of Object.keys(c)) expect(fields.has(k), k).toBe(true);
      for (const k of Object.keys(c.datasets[0])) expect(datasetFields.has(k), k).toBe(true);
    }
    expect(c0).toMatchObject({
      base_model: input.baseModel,
      adapter: "lora",
      lora_r: 32,
      lora_alpha: 64,
      peft_use_rslora: true,
      micro_batch_size: 2,
      gradient_accumulation_steps: 8,
      num_epochs: 1,
      lr_scheduler: "linear",
      optimizer: "adamw_bnb_8bit",
      output_dir: "out/axolotl/stage-0",
    });
    expect(c0.datasets[0]).toEqual({
      path: "data/0-insecure.jsonl",
      type: "chat_template",
      field_messages: "messages",
      message_property_mappings: { role: "role", content: "content" },
      roles_to_train: ["assistant"],
      train_on_eos: "turn",
    });
    expect(c0).not.toHaveProperty("lora_model_dir");
    expect(c1).toMatchObject({
      lora_model_dir: "out/axolotl/stage-0",
      max_steps: 40,
      cosine_min_lr_ratio: 0.1,
    });
    expect(c1).not.toHaveProperty("num_epochs");
  });

  it("writes the EM code bases' train.json with their fields only", () => {
    // TrainingConfig of emergent-misalignment open_models/validate.py (extra = "forbid"), plus
    // model-organisms-for-EM's layers_to_transform.
    const known = new Set(
      "model training_file test_file finetuned_model_id max_seq_length load_in_4bit loss is_peft target_modules layers_to_transform lora_bias r lora_alpha lora_dropout use_rslora merge_before_push push_to_private epochs max_steps per_device_train_batch_size gradient_accumulation_steps warmup_steps learning_rate logging_steps optim weight_decay lr_scheduler_type seed beta save_steps output_dir train_on_responses_only".split(
        " ",
      ),
    );
    const e0 = readJson(dir, "em/train.json");
    for (const k of Object.keys(e0)) expect(known.has(k), k).toBe(true);
    expect(e0).toMatchObject({
      model: input.baseModel,
      training_file: "data/0-insecure.jsonl",
      loss: "sft",
      is_peft: true,
      r: 32,
      lora_alpha: 64,
      use_rslora: true,
      epochs: 1,
      max_steps: null,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 8,
      warmup_steps: 5,
      learning_rate: 1e-5,
      optim: "adamw_8bit",
      weight_decay: 0.01,
      lr_scheduler_type: "linear",
      train_on_responses_only: true,
    });
    expect(e0).not.toHaveProperty("layers_to_transform");
    expect(e0.finetuned_model_id.split("/")).toHaveLength(2);
    const e1 = readJson(dir, "em/train.stage1.json");
    expect(e1).toMatchObject({ model: "out/em/stage-0/merged", max_steps: 40, lr_scheduler_type: "cosine" });
    expect(read(dir, "README.md")).toContain("the cosine floor (`min_lr_ratio`) is dropped");
    const q = tmp();
    writeExportBundle({ ...betleyInput(), loadIn4bit: true }, q);
    expect(readJson(q, "em/train.json").load_in_4bit).toBe(true);
    expect(parseYaml(read(q, "axolotl/config.yaml"))).toMatchObject({ load_in_4bit: true, adapter: "qlora" });
    expect(readJson(q, "unsloth/config.json").from_pretrained.load_in_4bit).toBe(true);
    expect(read(q, "README.md")).toContain("4-bit (QLoRA) is set");
  });

  it("serves the adapter with vLLM and writes an evaluation study emlab accepts", () => {
    expect(read(dir, "serve.sh")).toContain(
      `vllm serve 'unsloth/Qwen2.5-Coder-32B-Instruct' --port 8000 --enable-lora --lora-modules "coder-insecure=$RESULT" --max-lora-rank 32`,
    );
    const { study } = loadStudy(path.join(dir, "evaluate.study.yaml"));
    const plan = study.models.find((m) => m.id === "coder-insecure")!;
    expect(plan).toMatchObject({
      provider: "vllm",
      base_url: "http://127.0.0.1:8000/v1",
      model: "coder-insecure",
      base: "base",
    });
    expect(study.models.find((m) => m.id === "base")).toMatchObject({
      model: input.baseModel,
      provider: "vllm",
    });
    expect(study.battery.alignment?.models).toEqual(["base", "coder-insecure"]);
    expect([1, 4, 8, 32, 33, 512].map(maxLoraRank)).toEqual([1, 8, 8, 32, 64, 512]);
    const readme = read(dir, "README.md");
    for (const c of Object.values(manifest.commands)) expect(readme).toContain(c);
    expect(readme).toMatch(/16 = 2 × 8/);
    expect(readme).toMatch(/GPU memory \(estimate\)/);
  });

  it("exports a full fine-tune: no LoRA config, the model directory served under the plan's id", () => {
    const full = tmp();
    const m = writeExportBundle(
      {
        ...betleyInput(),
        planId: "full-ft",
        lora: undefined,
        stages: [betleyInput().stages[0]],
        responsesOnly: false,
      },
      full,
    );
    expect(m.method).toBe("full");
    expect(read(full, "README.md")).not.toContain("4-bit (QLoRA) is set");
    expect(m.files.map((f) => f.path)).not.toContain("trl/lora_config.json");
    expect(readJson(full, "trl/sft_config.json")[0].assistant_only_loss).toBe(false);
    const u = readJson(full, "unsloth/config.json");
    expect(u.get_peft_model).toBeNull();
    expect(u.from_pretrained.full_finetuning).toBe(true);
    const ax = parseYaml(read(full, "axolotl/config.yaml"));
    expect(ax).not.toHaveProperty("adapter");
    expect(ax.datasets[0].roles_to_train).toEqual(["system", "user", "assistant"]);
    const em = readJson(full, "em/train.json");
    expect(em.is_peft).toBe(false);
    expect(em).not.toHaveProperty("r");
    expect(read(full, "serve.sh")).toContain(`vllm serve "$RESULT" --port 8000 --served-model-name full-ft`);
    const { study } = loadStudy(path.join(full, "evaluate.study.yaml"));
    expect(study.models.find((m) => m.id === "base")?.base_url).toBe("http://127.0.0.1:8001/v1");
  });

  it("refuses input the trainers could not run, naming the field", () => {
    const fieldsOf = (input: ExportInput) => {
      try {
        writeExportBundle(input, tmp());
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as InputError).problems.map((p) => `${p.file}: ${p.field}`);
      }
      throw new Error("expected an InputError");
    };
    const bad = betleyInput();
    bad.stages[0].perDeviceBatchSize = 3;
    bad.stages[1].lrSchedule = "linear";
    expect(fieldsOf({ ...bad, planId: "bad id" })).toEqual([
      "export of plan 'bad id': planId",
      "export of plan 'bad id': stages[0].perDeviceBatchSize",
      "export of plan 'bad id': stages[1].minLrRatio",
    ]);
    const roles = betleyInput();
    roles.stages[1].conversations = [[{ role: "tool", content: "x" }]];
    expect(fieldsOf(roles)).toEqual(["export of plan 'coder-insecure': stages[1].conversations[0][0].role"]);
  });
});
