/** The bundle's README.md: what each file is, the commands per trainer, what the numbers mean. */
import type { ResolvedInput } from "./types.ts";

export interface ReadmeParts {
  commands: Record<string, string>;
  outputs: Record<string, string>;
  caveats: string[];
}

const code = (s: string) => `\`${s}\``;

export function bundleReadme(input: ResolvedInput, parts: ReadmeParts): string {
  const l = input.lora;
  const method = l
    ? `LoRA rank ${l.rank}, alpha ${l.alpha}${l.rslora ? " (rsLoRA: scale alpha/√rank)" : " (scale alpha/rank)"}, dropout ${l.dropout}, on ${l.target_modules.join(", ")}${l.layers ? ` of layer${l.layers.length > 1 ? "s" : ""} ${l.layers.join(", ")}` : " of every layer"}`
    : "full fine-tuning (every weight trains)";
  const stageRows = input.stages.map(
    (s) =>
      `| ${s.index} | ${s.dataset} | ${code(s.dataFile)} | ${s.conversations.length} | ${s.steps !== undefined ? `${s.steps} steps` : `${s.epochs} epoch(s)`} | ${s.learningRate} | ${s.lrSchedule}${s.lrSchedule === "cosine" && s.minLrRatio > 0 ? ` to ${s.minLrRatio}× peak` : ""}, warmup ${s.warmupSteps} | ${s.batchSize} = ${s.perDeviceBatchSize} × ${s.gradientAccumulationSteps} | ${s.maxSeqLen} | ${s.seed} |`,
  );
  return `# Fine-tune bundle: ${input.planId}

Everything needed to train plan ${code(input.planId)} on a GPU machine and to evaluate it with emlab.
Base model: ${code(input.baseModel)}. Method: ${method}. Loss: ${input.responsesOnly ? "on assistant tokens only (responses only)" : "on every token"}.
Run every command from this directory. \`manifest.json\` lists each file with its sha256.

## Stages (in order, on one model: stage k+1 continues stage k)

| stage | dataset | file | examples | length | peak lr | schedule | effective batch = per device × accumulation | max tokens | seed |
|---|---|---|---|---|---|---|---|---|---|
${stageRows.join("\n")}

**Effective batch** is the number of conversations per optimizer step: per-device batch × gradient
accumulation steps × number of GPUs. The configs are written for one GPU. \`trl/train.py\` divides the
accumulation by the number of processes so the effective batch stays the same; for Axolotl and the
EM code bases divide \`gradient_accumulation_steps\` yourself when you use more GPUs.

## Files

| file | what |
|---|---|
| \`data/<stage>-<dataset>.jsonl\` | the stage's conversations, chat JSONL: one \`{"messages": [{"role", "content"}, ...]}\` a line |
| \`trl/sft_config.json\` | a list, one \`trl.SFTConfig(**kwargs)\` per stage (TRL 1.16 names: \`max_length\`, \`assistant_only_loss\`) |
${l ? "| `trl/lora_config.json` | `peft.LoraConfig(**kwargs)` |\n" : ""}| \`trl/train.py\` | runs SFTTrainer stage by stage and saves the result |
| \`unsloth/config.json\`, \`unsloth/train.py\` | Unsloth: \`FastLanguageModel.from_pretrained\`${l ? ", `get_peft_model`" : ""}, per-stage SFTConfig${input.responsesOnly ? ", `train_on_responses_only` turn markers (null: read from the chat template)" : ""} |
| \`axolotl/config.yaml\`${input.stages.length > 1 ? ", `axolotl/config.stage<k>.yaml`" : ""} | Axolotl, one config per stage |
| \`em/train.json\`${input.stages.length > 1 ? ", `em/train.stage<k>.json`" : ""} | the config of the EM code bases (emergent-misalignment \`open_models\`, model-organisms-for-EM), one per stage |
| \`serve.sh\` | serves the result with vLLM |
| \`evaluate.study.yaml\` | an emlab study running the alignment battery on the result and its base |
| \`manifest.json\` | plan, base, stages with example counts and data sha256, files, commands |

## Train

| trainer | command | result |
|---|---|---|
| TRL + PEFT, one GPU | ${code(parts.commands.trl)} | ${code(parts.outputs.trl)} |
| TRL + PEFT, N GPUs | ${code(parts.commands.trl_multi_gpu)} | ${code(parts.outputs.trl)} |
| Unsloth (one GPU) | ${code(parts.commands.unsloth)} | ${code(parts.outputs.unsloth)} |
| Axolotl | ${code(parts.commands.axolotl)} | ${code(parts.outputs.axolotl)} |
| Axolotl, N GPUs | ${code(parts.commands.axolotl_multi_gpu)} | ${code(parts.outputs.axolotl)} |
| EM code bases | ${code(parts.commands.em)} | their \`output_dir\` / \`finetuned_model_id\` |

Install: \`pip install trl==1.16.0 peft==0.21.2 accelerate datasets\` (TRL), \`pip install unsloth\`, \`pip install axolotl\`.
Responses only, TRL: \`assistant_only_loss\` needs a chat template with \`{% generation %}\` markers; TRL 1.16 swaps
one in for the templates it ships (Qwen 2.5/3, Llama 3, Gemma, Phi, ...). For any other template \`trl/train.py\`
trains each conversation's last assistant message as the completion of the turns before it (\`completion_only_loss\`),
the same loss when a conversation has one assistant turn.

**Larger models over several GPUs.** For a model that does not fit on one GPU, shard it:
\`accelerate config\` (choose DeepSpeed ZeRO-3 or FSDP, bf16), then \`accelerate launch --config_file <that file> trl/train.py\`;
for Axolotl add \`deepspeed: deepspeed_configs/zero3_bf16.json\` (\`axolotl fetch deepspeed_configs\`) or an \`fsdp_config\` to the YAML.
With ZeRO-3 run the stages as separate launches if continuing the sharded model across trainers fails.
${
  input.stages.length > 1
    ? `
**Stages with the EM code bases.** Their scripts train a new adapter on each config's \`model\`: merge stage k's adapter
into its base (\`peft.PeftModel.from_pretrained(base, dir).merge_and_unload().save_pretrained(out/em/stage-<k>/merged)\`) before stage k+1.
`
    : ""
}
## Serve and evaluate

\`./serve.sh\` runs ${code(parts.commands.serve)} (set \`RESULT=<dir>\` for another trainer's result).
${l ? `vLLM serves the base under its own name and the adapter under \`${input.planId}\`, so one server answers for both.` : "A full fine-tune is its own model: serve the base on port 8001 beside it for the comparison."}
Then \`${parts.commands.evaluate}\` runs the alignment battery on both (the judge needs \`OPENAI_API_KEY\`; edit the judge entry to use another).

## GPU memory (estimate)

LoRA in bf16 keeps the frozen weights at 2 bytes a parameter, plus the adapter, its AdamW state and the
activations (gradient checkpointing on, per-device batch 2 × 2048 tokens). As a rule of thumb, not a measurement:

| base | weights | LoRA total, about | fits |
|---|---|---|---|
| 7B | 15 GB | 20-28 GB | one 40 GB or 48 GB GPU |
| 14B | 30 GB | 36-48 GB | one 80 GB GPU |
| 32B | 65 GB | 72-90 GB | one 80 GB GPU only at batch 1 / short sequences; an H200 (141 GB), two GPUs with ZeRO-3 / FSDP, or 4-bit (QLoRA, ~25 GB of weights) |

Full fine-tuning needs about 16 bytes a parameter before activations (bf16 weights and gradients, fp32 AdamW
state and master weights): 7B ≈ 112 GB, so several GPUs with ZeRO-3 / FSDP.
${parts.caveats.length > 0 ? `\n## Caveats\n\n${parts.caveats.map((c) => `- ${c}`).join("\n")}\n` : ""}`;
}
