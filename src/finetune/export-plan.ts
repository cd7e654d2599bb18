/**
 * The `export` backend: a plan written out as a bundle for a GPU trainer (TRL + PEFT, Unsloth,
 * Axolotl, the EM code bases' JSON config) in `<run dir>/finetune/<plan id>/`, with the commands
 * to train it, to serve the result with vLLM, and a study that evaluates it (src/finetune/export/).
 * Nothing is trained here, so the plan is no target of this run's battery.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { ExportFinetuneResult } from "../results/finetune.ts";
import { MANIFEST_FILE, writeExportBundle } from "./export/index.ts";
import type { PreparedPlan } from "./plan.ts";

export function exportedOnDisk(p: PreparedPlan): boolean {
  return existsSync(path.join(p.outDir, MANIFEST_FILE));
}

export function exportPlan(p: PreparedPlan, runDir: string): ExportFinetuneResult {
  const manifest = writeExportBundle(
    {
      planId: p.plan.id,
      baseModel: p.root.model,
      stages: p.stages.map((s, j) => ({
        dataset: s.dataset,
        conversations: s.conversations,
        epochs: s.epochs,
        ...(p.plan.stages[j].steps !== undefined ? { steps: s.steps } : {}),
        learningRate: s.learningRate,
        batchSize: s.batchSize,
        warmupSteps: s.warmupSteps,
        minLrRatio: s.minLrRatio,
        maxSeqLen: s.maxSeqLen,
        seed: s.seed,
        // A preset's recipe also fixes what the study has no field for.
        ...(p.preset
          ? {
              lrSchedule: p.preset.lr_schedule,
              optimizer: p.preset.optimizer,
              weightDecay: p.preset.weight_decay,
              perDeviceBatchSize: p.preset.per_device_batch_size,
            }
          : {}),
      })),
      responsesOnly: p.preset?.responses_only ?? true,
      ...(p.plan.lora ? { lora: p.plan.lora } : {}),
      seed: p.seed,
    },
    p.outDir,
  );
  return {
    backend: "export",
    base: p.plan.base,
    method: p.plan.lora ? "lora" : "full",
    dir: path.relative(runDir, p.outDir),
    examples: p.stages.reduce((a, s) => a + s.conversations.length, 0),
    stages: manifest.stages.map((s) => ({ dataset: s.dataset, examples: s.examples, file_sha256: s.sha256 })),
  };
}
