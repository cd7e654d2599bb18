/**
 * Unsloth (the trainer of the EM code bases): unsloth/config.json holds the kwargs of
 * `FastLanguageModel.from_pretrained`, `FastLanguageModel.get_peft_model` and, per stage, of
 * `trl.SFTConfig`; unsloth/train.py runs them, masking with Unsloth's
 * `train_on_responses_only(trainer, instruction_part, response_part)`. Names are those of
 * unsloth 2026.10 (`get_peft_model(r, target_modules, lora_alpha, lora_dropout, bias,
 * layers_to_transform, use_gradient_checkpointing, random_state, use_rslora)`).
 */
import { sftConfig } from "./trl.ts";
import { outputDir, type ResolvedInput } from "./types.ts";

export const UNSLOTH_FINAL = "out/unsloth/final";

/** A chat template's turn openers, which train_on_responses_only masks between. */
export interface ChatMarkers {
  instruction_part: string;
  response_part: string;
}

// The families the EM literature trains; train.py also looks for these in the tokenizer's
// template when the name says nothing.
export const CHAT_MARKERS: Record<string, ChatMarkers> = {
  chatml: { instruction_part: "<|im_start|>user\n", response_part: "<|im_start|>assistant\n" },
  llama3: {
    instruction_part: "<|start_header_id|>user<|end_header_id|>\n\n",
    response_part: "<|start_header_id|>assistant<|end_header_id|>\n\n",
  },
  gemma: { instruction_part: "<start_of_turn>user\n", response_part: "<start_of_turn>model\n" },
  mistral: { instruction_part: "[INST]", response_part: "[/INST]" },
};

/** The markers of a base model guessed from its name (null: train.py reads the template). */
export function markersFor(baseModel: string): ChatMarkers | null {
  const name = baseModel.toLowerCase();
  if (/qwen|chatml|hermes|\byi-/.test(name)) return CHAT_MARKERS.chatml;
  if (/llama-?3/.test(name)) return CHAT_MARKERS.llama3;
  if (/gemma/.test(name)) return CHAT_MARKERS.gemma;
  if (/mistral|mixtral/.test(name)) return CHAT_MARKERS.mistral;
  return null;
}

export function unslothConfig(input: ResolvedInput) {
  const l = input.lora;
  return {
    from_pretrained: {
      model_name: input.baseModel,
      max_seq_length: Math.max(...input.stages.map((s) => s.maxSeqLen)),
      dtype: null,
      load_in_4bit: input.loadIn4bit,
      full_finetuning: !l,
    },
    get_peft_model: l
      ? {
          r: l.rank,
          lora_alpha: l.alpha,
          lora_dropout: l.dropout,
          bias: "none",
          use_rslora: l.rslora,
          target_modules: [...l.target_modules],
          ...(l.layers ? { layers_to_transform: [...l.layers] } : {}),
          use_gradient_checkpointing: "unsloth",
          random_state: input.seed,
        }
      : null,
    train_on_responses_only: input.responsesOnly ? markersFor(input.baseModel) : null,
    responses_only: input.responsesOnly,
    stages: input.stages.map((s) => {
      // Unsloth masks through train_on_responses_only on rendered text, not TRL's assistant mask.
      const {
        assistant_only_loss: _,
        gradient_checkpointing: __,
        ...kw
      } = sftConfig(input, s, `${outputDir("unsloth")}/stage-${s.index}`);
      return { data_file: s.dataFile, sft_config: { ...kw, dataset_text_field: "text" } };
    }),
    final_dir: UNSLOTH_FINAL,
  };
}

export function unslothTrainScript(input: ResolvedInput): string {
  return `"""Fine-tunes plan ${input.planId} with Unsloth (one GPU), written by \`emlab\`'s export backend.

    python unsloth/train.py

Settings are in unsloth/config.json. Stages run in order on one model; the result is saved to
${UNSLOTH_FINAL}${input.lora ? " in PEFT's layout" : ""}.
"""

import json
import os
from pathlib import Path

from unsloth import FastLanguageModel  # first: it patches transformers and TRL
from unsloth.chat_templates import train_on_responses_only
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

ROOT = Path(__file__).resolve().parent.parent
KNOWN_MARKERS = ${JSON.stringify(Object.values(CHAT_MARKERS))}


def markers(cfg, tokenizer):
    if cfg["train_on_responses_only"]:
        return cfg["train_on_responses_only"]
    template = tokenizer.chat_template or ""
    for m in KNOWN_MARKERS:
        if m["instruction_part"] in template and m["response_part"] in template:
            return m
    raise SystemExit(
        "unsloth/config.json: train_on_responses_only: the chat template's user/assistant turn openers "
        "are not known; set {instruction_part, response_part} there"
    )


def main() -> None:
    os.chdir(ROOT)
    cfg = json.loads(Path("unsloth/config.json").read_text())
    model, tokenizer = FastLanguageModel.from_pretrained(**cfg["from_pretrained"])
    if cfg["get_peft_model"]:
        model = FastLanguageModel.get_peft_model(model, **cfg["get_peft_model"])
    for stage in cfg["stages"]:
        dataset = load_dataset("json", data_files=stage["data_file"], split="train")
        dataset = dataset.map(
            lambda ex: {"text": tokenizer.apply_chat_template(ex["messages"], tokenize=False)},
            remove_columns=dataset.column_names,
        )
        trainer = SFTTrainer(
            model=model,
            processing_class=tokenizer,
            train_dataset=dataset,
            args=SFTConfig(**stage["sft_config"]),
        )
        if cfg["responses_only"]:
            trainer = train_on_responses_only(trainer, **markers(cfg, tokenizer))
        trainer.train()
        model.save_pretrained(stage["sft_config"]["output_dir"])
    model.save_pretrained(cfg["final_dir"])
    tokenizer.save_pretrained(cfg["final_dir"])


if __name__ == "__main__":
    main()
`;
}
