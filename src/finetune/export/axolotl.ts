/**
 * Axolotl: one YAML config per stage (axolotl/config.yaml for the first, config.stage<k>.yaml
 * after), each run with `axolotl train <file>`. A later stage continues the previous one:
 * `lora_model_dir` loads its adapter, or (full fine-tuning) `base_model` is its output.
 * Field names are those of Axolotl 0.19's `AxolotlInputConfig` (axolotl.utils.schemas).
 */
import { stringify } from "yaml";
import { outputDir, type ResolvedInput, type ResolvedStage } from "./types.ts";

export const axolotlConfigFile = (k: number) =>
  k === 0 ? "axolotl/config.yaml" : `axolotl/config.stage${k}.yaml`;
export const axolotlStageDir = (k: number) => `${outputDir("axolotl")}/stage-${k}`;

// Axolotl's own names for the two optimizers (bitsandbytes' 8-bit AdamW is `adamw_bnb_8bit`).
const OPTIMIZER = { adamw_torch: "adamw_torch", adamw_8bit: "adamw_bnb_8bit" } as const;

function schedule(s: ResolvedStage): Record<string, unknown> {
  if (s.lrSchedule === "constant" || (s.lrSchedule === "cosine" && s.minLrRatio === 1))
    return { lr_scheduler: "constant_with_warmup" };
  if (s.lrSchedule === "linear") return { lr_scheduler: "linear" };
  return { lr_scheduler: "cosine", ...(s.minLrRatio > 0 ? { cosine_min_lr_ratio: s.minLrRatio } : {}) };
}

/** The config of stage `s` as an object (written as YAML). */
export function axolotlConfig(input: ResolvedInput, s: ResolvedStage): Record<string, unknown> {
  const l = input.lora;
  const previous = s.index > 0 ? axolotlStageDir(s.index - 1) : undefined;
  return {
    base_model: !l && previous ? previous : input.baseModel,
    load_in_4bit: input.loadIn4bit,
    ...(l
      ? {
          adapter: input.loadIn4bit ? "qlora" : "lora",
          ...(previous ? { lora_model_dir: previous } : {}),
          lora_r: l.rank,
          lora_alpha: l.alpha,
          lora_dropout: l.dropout,
          peft_use_rslora: l.rslora,
          lora_target_modules: [...l.target_modules],
          ...(l.layers ? { peft_layers_to_transform: [...l.layers] } : {}),
        }
      : {}),
    chat_template: "tokenizer_default",
    datasets: [
      {
        path: s.dataFile,
        type: "chat_template",
        field_messages: "messages",
        message_property_mappings: { role: "role", content: "content" },
        // Responses only: the loss is on assistant turns and their end-of-turn token.
        roles_to_train: input.responsesOnly ? ["assistant"] : ["system", "user", "assistant"],
        train_on_eos: "turn",
      },
    ],
    dataset_prepared_path: `${outputDir("axolotl")}/prepared-${s.index}`,
    val_set_size: 0,
    sequence_len: s.maxSeqLen,
    sample_packing: false,
    micro_batch_size: s.perDeviceBatchSize,
    gradient_accumulation_steps: s.gradientAccumulationSteps,
    ...(s.steps !== undefined ? { max_steps: s.steps } : { num_epochs: s.epochs }),
    learning_rate: s.learningRate,
    ...schedule(s),
    warmup_steps: s.warmupSteps,
    optimizer: OPTIMIZER[s.optimizer],
    weight_decay: s.weightDecay,
    max_grad_norm: 1,
    seed: s.seed,
    bf16: true,
    gradient_checkpointing: true,
    logging_steps: 1,
    output_dir: axolotlStageDir(s.index),
  };
}

export const axolotlYaml = (input: ResolvedInput, s: ResolvedStage) =>
  `# Stage ${s.index} of plan ${input.planId} (dataset ${s.dataset}): axolotl train ${axolotlConfigFile(s.index)}\n${stringify(axolotlConfig(input, s))}`;
