/**
 * What the export backend is given (one fine-tune plan, resolved) and what it writes down
 * (the manifest). The schemas are the source of truth; the per-trainer writers read the
 * resolved form, where every default is filled and the effective batch is split.
 */
import { z } from "zod";
import { InputError } from "../../config/load.ts";
import { ChatMessageSchema, type Conversation } from "../../datasets/chat-jsonl.ts";
import { LR_SCHEDULES, OPTIMIZERS, PresetLoraSchema } from "../presets.ts";

// Names that become file names, served model names and YAML ids: the study's Id rule.
const Name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '_', '.', '-' (start with a letter or digit)");

export const ExportStageSchema = z
  .object({
    dataset: Name,
    conversations: z.array(z.array(ChatMessageSchema).min(1)).min(1),
    epochs: z.number().positive(),
    steps: z.number().int().positive().optional(),
    learningRate: z.number().positive(),
    /** Effective batch: conversations per optimizer step over all devices. */
    batchSize: z.number().int().positive(),
    warmupSteps: z.number().int().min(0),
    minLrRatio: z.number().min(0).max(1),
    maxSeqLen: z.number().int().positive(),
    seed: z.number().int(),
    // What GPU trainers need and the local engine fixes; the defaults are the engine's
    // (cosine decay to minLrRatio, AdamW, no weight decay). Presets set the EM recipes' values.
    lrSchedule: z.enum(LR_SCHEDULES).default("cosine"),
    optimizer: z.enum(OPTIMIZERS).default("adamw_torch"),
    weightDecay: z.number().min(0).default(0),
    /** Conversations per device per micro-step (default: 2, or 1 when the batch is odd). */
    perDeviceBatchSize: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.perDeviceBatchSize !== undefined && s.batchSize % s.perDeviceBatchSize !== 0)
      ctx.addIssue({
        code: "custom",
        path: ["perDeviceBatchSize"],
        message: `must divide batchSize ${s.batchSize} (the rest is gradient accumulation)`,
      });
    if (s.lrSchedule === "linear" && s.minLrRatio > 0)
      ctx.addIssue({
        code: "custom",
        path: ["minLrRatio"],
        message: "a linear schedule decays to 0: use lrSchedule 'cosine' for a floor",
      });
  });

/** LoRA settings in the study file's names: the same shape a preset gives. */
export const ExportLoraSchema = PresetLoraSchema;

export const ExportInputSchema = z
  .object({
    planId: Name,
    /** The base as the study names it: an HF hub id or a local directory. */
    baseModel: z.string().min(1),
    /** Run in order on one model (sequential plans). */
    stages: z.array(ExportStageSchema).min(1),
    /** Absent: full fine-tuning. */
    lora: ExportLoraSchema.optional(),
    seed: z.number().int(),
    /** Train on assistant tokens only (the EM recipes' train_on_responses_only). */
    responsesOnly: z.boolean().default(true),
    /** Load the base in 4 bits (QLoRA) where the trainer supports it (Unsloth, Axolotl, the EM code bases). */
    loadIn4bit: z.boolean().default(false),
  })
  .strict();

// Conversations as the datasets give them; roles other than system/user/assistant are refused when checked.
export type ExportStage = Omit<z.input<typeof ExportStageSchema>, "conversations"> & {
  conversations: Conversation[];
};
export type ExportLora = z.infer<typeof ExportLoraSchema>;
export type ExportInput = Omit<z.input<typeof ExportInputSchema>, "stages"> & { stages: ExportStage[] };

/** A stage with its defaults filled and its batch split. */
export interface ResolvedStage extends z.infer<typeof ExportStageSchema> {
  index: number;
  perDeviceBatchSize: number;
  gradientAccumulationSteps: number;
  /** The stage's data file, relative to the bundle. */
  dataFile: string;
}

export interface ResolvedInput extends Omit<z.infer<typeof ExportInputSchema>, "stages"> {
  stages: ResolvedStage[];
}

/** Checks the input (InputError naming `export <plan>` and the field) and fills the defaults. */
export function resolveExportInput(input: ExportInput): ResolvedInput {
  const r = ExportInputSchema.safeParse(input);
  const file = `export of plan '${typeof input?.planId === "string" ? input.planId : "?"}'`;
  if (!r.success)
    throw new InputError(
      r.error.issues.map((i) => ({
        file,
        field: i.path
          .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
          .join("")
          .replace(/^\./, ""),
        message: i.message,
      })),
    );
  const v = r.data;
  return {
    ...v,
    stages: v.stages.map((s, index) => {
      // Two a device is the EM recipes' split (2 × 8 = 16); an odd batch falls back to 1.
      const perDevice = s.perDeviceBatchSize ?? (s.batchSize % 2 === 0 ? 2 : 1);
      return {
        ...s,
        index,
        perDeviceBatchSize: perDevice,
        gradientAccumulationSteps: s.batchSize / perDevice,
        dataFile: `data/${index}-${s.dataset}.jsonl`,
      };
    }),
  };
}

export const ExportManifestSchema = z
  .object({
    format: z.literal("emlab-export/1"),
    plan_id: z.string(),
    base_model: z.string(),
    method: z.enum(["lora", "full"]),
    seed: z.number().int(),
    responses_only: z.boolean(),
    lora: ExportLoraSchema.nullable(),
    stages: z.array(
      z
        .object({
          index: z.number().int().min(0),
          dataset: z.string(),
          file: z.string(),
          examples: z.number().int().positive(),
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          epochs: z.number().positive(),
          steps: z.number().int().positive().nullable(),
          learning_rate: z.number().positive(),
          lr_schedule: z.enum(LR_SCHEDULES),
          min_lr_ratio: z.number(),
          warmup_steps: z.number().int(),
          effective_batch: z.number().int().positive(),
          per_device_batch_size: z.number().int().positive(),
          gradient_accumulation_steps: z.number().int().positive(),
          max_seq_len: z.number().int().positive(),
          seed: z.number().int(),
        })
        .strict(),
    ),
    /** Every file of the bundle but the manifest, in path order. */
    files: z.array(z.object({ path: z.string(), bytes: z.number().int(), sha256: z.string() }).strict()),
    /** Shell commands, run from the bundle directory. */
    commands: z.record(z.string(), z.string()),
    /** Where each trainer leaves the final adapter (LoRA) or model (full), relative to the bundle. */
    outputs: z.record(z.string(), z.string()),
  })
  .strict();
export type ExportManifest = z.infer<typeof ExportManifestSchema>;

/** Where each trainer writes its checkpoints and its final adapter / model. */
export const TRAINERS = ["trl", "unsloth", "axolotl", "em"] as const;
export type Trainer = (typeof TRAINERS)[number];
export const outputDir = (t: Trainer) => `out/${t}`;
export const finalDir = (t: Trainer) => `out/${t}/final`;
