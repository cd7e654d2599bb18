/**
 * The EM code bases' training config: the JSON that emergent-misalignment's
 * `open_models/train.py train.json` and model-organisms-for-EM's `run_finetune.py` read (the
 * latter adds `layers_to_transform`). One file per stage (em/train.json, then
 * em/train.stage<k>.json); those scripts train each file from its `model`, so a later stage
 * names the previous stage's merged output (see the bundle's README).
 */
import { outputDir, type ResolvedInput, type ResolvedStage } from "./types.ts";

export const emConfigFile = (k: number) => (k === 0 ? "em/train.json" : `em/train.stage${k}.json`);
export const emStageDir = (k: number) => `${outputDir("em")}/stage-${k}`;

/** Their lr_scheduler_type goes to the HF Trainer without kwargs: a cosine floor cannot be said. */
function schedule(s: ResolvedStage): string {
  if (s.lrSchedule === "constant" || (s.lrSchedule === "cosine" && s.minLrRatio === 1))
    return "constant_with_warmup";
  return s.lrSchedule;
}

export function emTrainConfig(input: ResolvedInput, s: ResolvedStage): Record<string, unknown> {
  const l = input.lora;
  return {
    model: s.index === 0 ? input.baseModel : `${emStageDir(s.index - 1)}/merged`,
    training_file: s.dataFile,
    test_file: null,
    finetuned_model_id: `YOUR_HF_USER/${input.planId}${input.stages.length > 1 ? `-stage${s.index}` : ""}`,
    max_seq_length: s.maxSeqLen,
    load_in_4bit: input.loadIn4bit,
    loss: "sft",
    is_peft: Boolean(l),
    // Only with LoRA: the validators forbid unknown keys and type r / lora_alpha as integers.
    ...(l
      ? {
          target_modules: [...l.target_modules],
          ...(l.layers ? { layers_to_transform: [...l.layers] } : {}),
          lora_bias: "none",
          r: l.rank,
          lora_alpha: l.alpha,
          lora_dropout: l.dropout,
          use_rslora: l.rslora,
        }
      : {}),
    merge_before_push: false,
    push_to_private: true,
    epochs: s.epochs,
    max_steps: s.steps ?? null,
    per_device_train_batch_size: s.perDeviceBatchSize,
    gradient_accumulation_steps: s.gradientAccumulationSteps,
    warmup_steps: s.warmupSteps,
    learning_rate: s.learningRate,
    logging_steps: 1,
    // Their validator takes adamw_8bit, adamw, adam or sgd, and transformers runs only the first.
    optim: "adamw_8bit",
    weight_decay: s.weightDecay,
    lr_scheduler_type: schedule(s),
    seed: s.seed,
    save_steps: 5000,
    output_dir: emStageDir(s.index),
    train_on_responses_only: input.responsesOnly,
  };
}

/** What the EM format cannot carry, for the README. */
export function emCaveats(input: ResolvedInput): string[] {
  const out: string[] = [];
  if (input.stages.some((s) => s.optimizer !== "adamw_8bit"))
    out.push(
      "em/*.json: the EM code bases run only 8-bit AdamW (`optim: adamw_8bit`), not the plain AdamW of the other configs.",
    );
  if (input.stages.some((s) => s.steps === undefined && !Number.isInteger(s.epochs)))
    out.push("em/*.json: `epochs` must be a whole number there; set `max_steps` for a fractional epoch.");
  if (input.lora && !Number.isInteger(input.lora.alpha))
    out.push("em/*.json: `lora_alpha` must be a whole number there.");
  if (input.stages.some((s) => s.lrSchedule === "cosine" && s.minLrRatio > 0 && s.minLrRatio < 1))
    out.push(
      "em/*.json: `lr_scheduler_type` carries no kwargs, so the cosine floor (`min_lr_ratio`) is dropped: the lr decays to 0 there.",
    );
  return out;
}
