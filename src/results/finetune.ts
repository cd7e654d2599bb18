import { z } from "zod";

/**
 * One fine-tune plan as trained by the local engine (by `emlab run`, before the battery): no
 * timings, so runs compare. It carries no `backend` key (it is the default backend's).
 */
export const LocalFinetuneResultSchema = z.object({
  base: z.string(),
  method: z.enum(["lora", "full"]),
  steps: z.number().int(),
  /** Conversations in the plan's datasets (each stage's). */
  examples: z.number().int(),
  /** Target (assistant) tokens trained on, over every step. */
  tokens: z.number().int(),
  first_loss: z.number(),
  last_loss: z.number(),
  /** Every step's training loss, rounded to 1e-4. */
  loss_curve: z.array(z.number()),
  stages: z.array(
    z.object({
      dataset: z.string(),
      steps: z.number().int(),
      examples: z.number().int(),
      tokens: z.number().int(),
    }),
  ),
});
export type LocalFinetuneResult = z.infer<typeof LocalFinetuneResultSchema>;

/** A checkpoint a provider kept of a job (OpenAI's fine_tuning.job.checkpoint, Together's checkpoints, the worker's). */
export const ProviderCheckpointSchema = z.object({
  /**
   * The name it is sampled or continued from (OpenAI: ft:...:ckpt-step-N; Together: the job
   * id:step); the worker's: its folder in the worker's --state-dir, jobs/ID/checkpoint-STEP.
   */
  model: z.string(),
  step: z.number().int().nullable(),
  train_loss: z.number().nullable(),
});

/** One plan trained through a provider's fine-tuning API (or the HF worker's jobs): one job per stage, each from the last one's model. */
export const RemoteFinetuneResultSchema = z.object({
  backend: z.enum(["openai", "together", "worker"]),
  base: z.string(),
  /** What the provider was asked for: LoRA (Together, the worker), full, or the provider's own choice (OpenAI). */
  method: z.enum(["lora", "full", "provider"]),
  /** The model the battery targets: the last stage's fine-tuned model, as the provider names it. */
  model: z.string(),
  examples: z.number().int(),
  /** Tokens the provider reports it trained on (null when it does not say). */
  tokens: z.number().int().nullable(),
  /** Training loss per step, from the provider's metrics events (empty when it sends none). */
  loss_curve: z.array(z.number()),
  stages: z.array(
    z.object({
      dataset: z.string(),
      examples: z.number().int(),
      /** sha256 of the JSONL bytes uploaded (the worker: of the examples sent inline in the job). */
      file_sha256: z.string(),
      /** The provider's file id; the worker's is `inline:<file_sha256>` (it takes no files). */
      file_id: z.string(),
      job_id: z.string(),
      /** What this stage started from and what it made. */
      from: z.string(),
      model: z.string(),
      trained_tokens: z.number().int().nullable(),
      checkpoints: z.array(ProviderCheckpointSchema),
    }),
  ),
});
export type RemoteFinetuneResult = z.infer<typeof RemoteFinetuneResultSchema>;

/** A plan written out for a GPU trainer (backend `export`): nothing trained here. */
export const ExportFinetuneResultSchema = z.object({
  backend: z.literal("export"),
  base: z.string(),
  method: z.enum(["lora", "full"]),
  /** The bundle's folder, relative to the run directory. */
  dir: z.string(),
  examples: z.number().int(),
  stages: z.array(z.object({ dataset: z.string(), examples: z.number().int(), file_sha256: z.string() })),
});
export type ExportFinetuneResult = z.infer<typeof ExportFinetuneResultSchema>;

/** A plan's block in results.json's `finetune`. */
export const FinetuneResultSchema = z.union([
  RemoteFinetuneResultSchema,
  ExportFinetuneResultSchema,
  LocalFinetuneResultSchema,
]);
export type FinetuneResult = z.infer<typeof FinetuneResultSchema>;
