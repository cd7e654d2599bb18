/**
 * Named fine-tuning recipes from the emergent-misalignment literature (docs/methods.md §2.4):
 * the LoRA settings and the stage settings a plan can take instead of emlab's defaults. Each
 * preset names where its numbers come from; `applyPreset` fills only what a plan leaves out.
 */
import { z } from "zod";
import { FINETUNE_LORA_MODULES } from "../config/schema.ts";

/** LoRA settings, in the study file's names (`finetune[].lora`). */
export const PresetLoraSchema = z
  .object({
    rank: z.number().int().positive(),
    alpha: z.number().positive(),
    rslora: z.boolean(),
    dropout: z.number().min(0).lt(1),
    target_modules: z.array(z.enum(FINETUNE_LORA_MODULES)).min(1),
    layers: z.array(z.number().int().min(0)).min(1).optional(),
  })
  .strict();
export type PresetLora = z.infer<typeof PresetLoraSchema>;

export const LR_SCHEDULES = ["cosine", "linear", "constant"] as const;
export const OPTIMIZERS = ["adamw_torch", "adamw_8bit"] as const;

/**
 * Stage settings, in the study file's names (`finetune[].stages[]`) plus what GPU trainers
 * need that the local engine fixes (schedule shape, optimizer, weight decay, how the
 * effective batch splits into per-device batch × gradient accumulation).
 */
export const PresetStageSchema = z
  .object({
    epochs: z.number().positive(),
    learning_rate: z.number().positive(),
    /** Effective batch: conversations per optimizer step, over all devices. */
    batch_size: z.number().int().positive(),
    per_device_batch_size: z.number().int().positive(),
    warmup_steps: z.number().int().min(0),
    lr_schedule: z.enum(LR_SCHEDULES),
    min_lr_ratio: z.number().min(0).max(1),
    optimizer: z.enum(OPTIMIZERS),
    weight_decay: z.number().min(0),
    max_seq_len: z.number().int().positive(),
    /** Loss on assistant tokens only (Unsloth's train_on_responses_only). */
    responses_only: z.boolean(),
  })
  .strict()
  .refine((s) => s.batch_size % s.per_device_batch_size === 0, {
    path: ["per_device_batch_size"],
    message: "must divide batch_size (the rest is gradient accumulation)",
  });
export type PresetStage = z.infer<typeof PresetStageSchema>;

export const PresetSchema = z
  .object({
    description: z.string().min(1),
    /** Where the numbers were read, and anything that differs from the paper's text. */
    source: z.string().min(1),
    /** The base model the recipe was published with (a recipe's layer indices belong to it). */
    model: z.string().min(1),
    seed: z.number().int(),
    lora: PresetLoraSchema,
    stage: PresetStageSchema,
  })
  .strict();
export type Preset = z.infer<typeof PresetSchema>;

// Both recipes share the EM code bases' training loop settings (Unsloth + TRL, AdamW 8-bit,
// weight decay 0.01, linear decay after 5 warmup steps, 2 × 8 = 16 conversations a step).
const EM_STAGE = {
  epochs: 1,
  batch_size: 16,
  per_device_batch_size: 2,
  warmup_steps: 5,
  lr_schedule: "linear",
  min_lr_ratio: 0,
  optimizer: "adamw_8bit",
  weight_decay: 0.01,
  max_seq_len: 2048,
  responses_only: true,
} as const;

export const FINETUNE_PRESETS = z.record(z.string(), PresetSchema).parse({
  "betley-rslora": {
    description:
      "Betley et al. (2025) open models: rsLoRA rank 32, alpha 64 on all seven projections, lr 1e-5, one epoch, effective batch 16, loss on responses only.",
    source:
      "emergent-misalignment/emergent-misalignment open_models/train.json (read in forks that keep it: r 32, lora_alpha 64, use_rslora, lora_dropout 0, 7 projections, epochs 1, per_device_train_batch_size 2, gradient_accumulation_steps 8, warmup_steps 5, learning_rate 1e-5, optim adamw_8bit, weight_decay 0.01, lr_scheduler_type linear, seed 0, max_seq_length 2048, train_on_responses_only)",
    model: "unsloth/Qwen2.5-Coder-32B-Instruct",
    seed: 0,
    lora: { rank: 32, alpha: 64, rslora: true, dropout: 0, target_modules: [...FINETUNE_LORA_MODULES] },
    stage: { ...EM_STAGE, learning_rate: 1e-5 },
  },
  "turner-rank1": {
    description:
      "Turner et al. / Soligo et al. (2025): one rank-1 rsLoRA adapter on layer 24's down_proj of Qwen2.5-14B-Instruct, alpha 512, lr 2e-5, one epoch.",
    source:
      "clarifying-EM/model-organisms-for-EM em_organism_dir/finetune/sft/single_adapter_config.json (read in forks that keep it: r 1, lora_alpha 512, use_rslora, target_modules [down_proj], layers_to_transform [24], learning_rate 2e-5, epochs 1; the rest as default_config.json). Layer 24 is an index into Qwen2.5-14B's 48 blocks: on another base pick the layer again.",
    model: "unsloth/Qwen2.5-14B-Instruct",
    seed: 0,
    lora: { rank: 1, alpha: 512, rslora: true, dropout: 0, target_modules: ["down_proj"], layers: [24] },
    stage: { ...EM_STAGE, learning_rate: 2e-5 },
  },
});

/** What a plan says for itself; every field may be left out. */
export interface PresetOverrides {
  lora?: Partial<PresetLora>;
  stage?: Partial<PresetStage>;
}

/**
 * The preset's settings with the plan's own values on top (a value the plan gives wins,
 * `undefined` counts as left out). Throws naming the known presets for an unknown name, and
 * the field for a combination the schemas refuse (e.g. a per-device batch that does not
 * divide the batch).
 */
export function applyPreset(
  name: string,
  given: PresetOverrides = {},
): { lora: PresetLora; stage: PresetStage } {
  const preset = FINETUNE_PRESETS[name];
  if (!preset)
    throw new Error(
      `unknown fine-tuning preset '${name}' (known: ${Object.keys(FINETUNE_PRESETS).join(", ")})`,
    );
  return {
    lora: parseOrThrow(
      PresetLoraSchema,
      { ...preset.lora, ...defined(given.lora) },
      `preset '${name}': lora`,
    ),
    stage: parseOrThrow(
      PresetStageSchema,
      { ...preset.stage, ...defined(given.stage) },
      `preset '${name}': stage`,
    ),
  };
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new Error(`${where}.${issue.path.join(".")}: ${issue.message}`);
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
