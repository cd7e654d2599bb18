/**
 * The export backend's one entry point: writes, for one resolved fine-tune plan, a directory
 * with its datasets and ready-to-run configs for TRL + PEFT, Unsloth, Axolotl and the EM code
 * bases, a vLLM serve script, an emlab study to evaluate the result, a README and a manifest.
 * Pure apart from the files it writes: the same input gives the same bytes.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { serializeChatJsonl } from "../../datasets/chat-jsonl.ts";
import { sha256 } from "../../runs/canonical.ts";
import { axolotlConfigFile, axolotlStageDir, axolotlYaml } from "./axolotl.ts";
import { emCaveats, emConfigFile, emTrainConfig } from "./em-json.ts";
import { bundleReadme } from "./readme.ts";
import { loraConfig, sftConfig, TRL_FINAL, trlTrainScript } from "./trl.ts";
import {
  type ExportInput,
  type ExportManifest,
  ExportManifestSchema,
  type ResolvedInput,
  resolveExportInput,
} from "./types.ts";
import { UNSLOTH_FINAL, unslothConfig, unslothTrainScript } from "./unsloth.ts";
import { evaluateStudyYaml, serveScript, vllmCommand } from "./vllm.ts";

export const MANIFEST_FILE = "manifest.json";

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** The commands, run from the bundle directory, and where each trainer leaves its result. */
export function bundleCommands(input: ResolvedInput) {
  const last = input.stages.length - 1;
  const axolotlAll = input.stages.map((s) => `axolotl train ${axolotlConfigFile(s.index)}`);
  const outputs = {
    trl: TRL_FINAL,
    unsloth: UNSLOTH_FINAL,
    axolotl: axolotlStageDir(last),
  };
  const commands = {
    trl: "python trl/train.py",
    trl_multi_gpu: "accelerate launch --num_processes N trl/train.py",
    unsloth: "python unsloth/train.py",
    axolotl: axolotlAll.join(" && "),
    axolotl_multi_gpu: axolotlAll.map((c) => `${c} --launcher accelerate -- --num_processes N`).join(" && "),
    em: input.stages
      .map((s) => `python <emergent-misalignment>/open_models/training.py ${emConfigFile(s.index)}`)
      .join(" && "),
    serve: vllmCommand(input, TRL_FINAL),
    evaluate: "npx emlab run evaluate.study.yaml",
  };
  return { commands, outputs };
}

/**
 * Writes the bundle into `outDir` (created; files already there with the same names are
 * replaced, others left alone) and returns its manifest, also written as manifest.json.
 * Throws InputError naming the field for input the trainers could not run.
 */
export function writeExportBundle(input: ExportInput, outDir: string): ExportManifest {
  const r = resolveExportInput(input);
  const files = new Map<string, string>();
  for (const s of r.stages) files.set(s.dataFile, serializeChatJsonl(s.conversations));

  files.set("trl/sft_config.json", json(r.stages.map((s) => sftConfig(r, s))));
  const lora = loraConfig(r);
  if (lora) files.set("trl/lora_config.json", json(lora));
  files.set("trl/train.py", trlTrainScript(r));

  files.set("unsloth/config.json", json(unslothConfig(r)));
  files.set("unsloth/train.py", unslothTrainScript(r));

  for (const s of r.stages) {
    files.set(axolotlConfigFile(s.index), axolotlYaml(r, s));
    files.set(emConfigFile(s.index), json(emTrainConfig(r, s)));
  }

  const { commands, outputs } = bundleCommands(r);
  files.set("serve.sh", serveScript(r, TRL_FINAL));
  files.set("evaluate.study.yaml", evaluateStudyYaml(r));
  const caveats = [
    ...(r.loadIn4bit
      ? [
          "4-bit (QLoRA) is set for Unsloth, Axolotl and the EM code bases; `trl/train.py` loads bf16 weights (pass a `BitsAndBytesConfig` there for 4-bit).",
        ]
      : []),
    ...emCaveats(r),
  ];
  files.set("README.md", bundleReadme(r, { commands, outputs, caveats }));

  for (const [rel, text] of files) {
    const abs = path.join(outDir, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, text, { mode: rel.endsWith(".sh") ? 0o755 : 0o644 });
  }

  const manifest = ExportManifestSchema.parse({
    format: "emlab-export/1",
    plan_id: r.planId,
    base_model: r.baseModel,
    method: r.lora ? "lora" : "full",
    seed: r.seed,
    responses_only: r.responsesOnly,
    lora: r.lora ?? null,
    stages: r.stages.map((s) => ({
      index: s.index,
      dataset: s.dataset,
      file: s.dataFile,
      examples: s.conversations.length,
      sha256: sha256(files.get(s.dataFile)!),
      epochs: s.epochs,
      steps: s.steps ?? null,
      learning_rate: s.learningRate,
      lr_schedule: s.lrSchedule,
      min_lr_ratio: s.minLrRatio,
      warmup_steps: s.warmupSteps,
      effective_batch: s.batchSize,
      per_device_batch_size: s.perDeviceBatchSize,
      gradient_accumulation_steps: s.gradientAccumulationSteps,
      max_seq_len: s.maxSeqLen,
      seed: s.seed,
    })),
    files: [...files.keys()].sort().map((rel) => {
      const text = files.get(rel)!;
      return { path: rel, bytes: Buffer.byteLength(text), sha256: sha256(text) };
    }),
    commands,
    outputs,
  });
  writeFileSync(path.join(outDir, MANIFEST_FILE), json(manifest));
  return manifest;
}

/** Reads a bundle's manifest back (checked), e.g. to verify the files before training. */
export function readExportManifest(dir: string): ExportManifest {
  return ExportManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), "utf8")));
}

/** Files of the bundle whose bytes no longer match the manifest (empty: intact). */
export function changedBundleFiles(dir: string): string[] {
  const m = readExportManifest(dir);
  return m.files
    .filter((f) => {
      const abs = path.join(dir, f.path);
      try {
        return !statSync(abs).isFile() || sha256(readFileSync(abs)) !== f.sha256;
      } catch {
        return true;
      }
    })
    .map((f) => f.path);
}
