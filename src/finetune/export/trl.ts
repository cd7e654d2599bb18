/**
 * TRL + PEFT: one `trl.SFTConfig` kwargs object per stage (trl/sft_config.json, a list in
 * stage order), the `peft.LoraConfig` kwargs (trl/lora_config.json), and trl/train.py, which
 * runs SFTTrainer stage after stage on one model. Field names are TRL 1.16's (`max_length`,
 * `assistant_only_loss` for conversational data: TRL swaps in a training chat template with
 * `{% generation %}` markers for the model families it knows).
 */
import { outputDir, type ResolvedInput, type ResolvedStage } from "./types.ts";

export const TRL_FINAL = "out/trl/final";
export const trlStageDir = (k: number) => `${outputDir("trl")}/stage-${k}`;

/** The schedule as transformers names it, with its kwargs. */
export function hfSchedule(s: ResolvedStage): { lr_scheduler_type: string; lr_scheduler_kwargs?: object } {
  if (s.lrSchedule === "constant" || (s.lrSchedule === "cosine" && s.minLrRatio === 1))
    return { lr_scheduler_type: "constant_with_warmup" };
  if (s.lrSchedule === "linear") return { lr_scheduler_type: "linear" };
  if (s.minLrRatio > 0)
    return { lr_scheduler_type: "cosine_with_min_lr", lr_scheduler_kwargs: { min_lr_rate: s.minLrRatio } };
  return { lr_scheduler_type: "cosine" };
}

/** The epochs-or-steps pair the HF Trainer reads (`max_steps` wins over epochs when set). */
export const hfLength = (s: ResolvedStage) =>
  s.steps !== undefined ? { max_steps: s.steps } : { num_train_epochs: s.epochs };

/** kwargs of trl.SFTConfig for one stage. */
export function sftConfig(input: ResolvedInput, s: ResolvedStage, dir = trlStageDir(s.index)) {
  return {
    output_dir: dir,
    ...hfLength(s),
    per_device_train_batch_size: s.perDeviceBatchSize,
    gradient_accumulation_steps: s.gradientAccumulationSteps,
    learning_rate: s.learningRate,
    ...hfSchedule(s),
    warmup_steps: s.warmupSteps,
    optim: s.optimizer,
    weight_decay: s.weightDecay,
    // The local engine clips at norm 1 too.
    max_grad_norm: 1,
    seed: s.seed,
    data_seed: s.seed,
    max_length: s.maxSeqLen,
    packing: false,
    assistant_only_loss: input.responsesOnly,
    bf16: true,
    gradient_checkpointing: true,
    logging_steps: 1,
    save_strategy: "no",
    report_to: "none",
  };
}

/** kwargs of peft.LoraConfig; null for full fine-tuning. */
export function loraConfig(input: ResolvedInput) {
  const l = input.lora;
  if (!l) return null;
  return {
    r: l.rank,
    lora_alpha: l.alpha,
    lora_dropout: l.dropout,
    use_rslora: l.rslora,
    target_modules: [...l.target_modules],
    ...(l.layers ? { layers_to_transform: [...l.layers] } : {}),
    bias: "none",
    task_type: "CAUSAL_LM",
  };
}

const py = (v: unknown) => JSON.stringify(v);

/** trl/train.py: reads the JSON configs, trains the stages in order, saves in PEFT's layout. */
export function trlTrainScript(input: ResolvedInput): string {
  return `"""Fine-tunes plan ${input.planId} with TRL + PEFT, written by \`emlab\`'s export backend.

One GPU:   python trl/train.py
N GPUs:    accelerate launch --num_processes N trl/train.py
           (gradient accumulation is divided by N, so the effective batch stays as exported)

Stages run in order on one model: stage k+1 continues stage k's ${input.lora ? "adapter" : "weights"}.
Responses only (assistant_only_loss) needs a chat template with {% generation %} markers, which TRL
supplies for the templates it ships; for any other template each conversation is split into a prompt
(every turn before the last assistant message) and a completion (that message), trained with
completion_only_loss: the same loss when a conversation has one assistant turn.
Each stage is saved to its output_dir; the result to ${TRL_FINAL} (${input.lora ? "adapter_config.json + adapter_model.safetensors" : "config.json + weights + tokenizer"}).
"""

import importlib.util
import json
import os
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

ROOT = Path(__file__).resolve().parent.parent
BASE_MODEL = ${py(input.baseModel)}
DATA_FILES = ${py(input.stages.map((s) => s.dataFile))}
FINAL_DIR = ${py(TRL_FINAL)}


def assistant_mask_available(tokenizer) -> bool:
    from trl.chat_template_utils import get_training_chat_template

    try:
        get_training_chat_template(tokenizer)  # None: the template has the markers; a str: TRL patches it
        return True
    except ValueError:
        return False


def as_prompt_completion(example):
    messages = example["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return {"prompt": messages[:last], "completion": [messages[last]]}


def main() -> None:
    os.chdir(ROOT)  # every path in the configs is relative to the bundle
    stages = json.loads(Path("trl/sft_config.json").read_text())
    lora_file = Path("trl/lora_config.json")
    peft_config = None
    if lora_file.exists():
        from peft import LoraConfig

        peft_config = LoraConfig(**json.loads(lora_file.read_text()))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    # transformers 5 turns on hub kernels when it can; without the \`kernels\` package it must be told not to.
    no_kernels = {} if importlib.util.find_spec("kernels") else {"use_kernels": False}
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.bfloat16, **no_kernels)
    trainer = None
    for k, (kwargs, data_file) in enumerate(zip(stages, DATA_FILES, strict=True)):
        kwargs = dict(kwargs)
        accum = kwargs["gradient_accumulation_steps"]
        if world > 1:
            if accum % world != 0:
                raise SystemExit(
                    f"trl/sft_config.json stage {k}: gradient_accumulation_steps {accum} does not divide "
                    f"over {world} processes; change it or per_device_train_batch_size"
                )
            kwargs["gradient_accumulation_steps"] = accum // world
        dataset = load_dataset("json", data_files=data_file, split="train")
        if kwargs.get("assistant_only_loss") and not assistant_mask_available(tokenizer):
            print(f"stage {k}: the chat template has no assistant mask; training on the last assistant turn")
            dataset = dataset.map(as_prompt_completion, remove_columns=dataset.column_names)
            kwargs.update(assistant_only_loss=False, completion_only_loss=True)
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(**kwargs),
            train_dataset=dataset,
            processing_class=tokenizer,
            # Stage 0 adds the adapter; later stages train the same one.
            peft_config=peft_config if k == 0 else None,
        )
        trainer.train()
        trainer.save_model(kwargs["output_dir"])
        model = trainer.model
    trainer.save_model(FINAL_DIR)
    tokenizer.save_pretrained(FINAL_DIR)


if __name__ == "__main__":
    main()
`;
}
