/**
 * Serving the result with vLLM (serve.sh) and running emlab's battery on it
 * (evaluate.study.yaml): a LoRA plan is served as an adapter on its base, under the plan's
 * id, so one server answers for both; a full fine-tune is its own model directory.
 */
import { stringify } from "yaml";
import type { ResolvedInput } from "./types.ts";

export const VLLM_URL = "http://127.0.0.1:8000/v1";
// The base beside a full fine-tune needs a second server.
export const VLLM_BASE_URL_FULL = "http://127.0.0.1:8001/v1";

// vLLM accepts only these for --max-lora-rank; the adapter's rank is rounded up to one.
const VLLM_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512];

export function maxLoraRank(rank: number): number {
  const r = VLLM_LORA_RANKS.find((x) => x >= rank);
  if (r === undefined) throw new Error(`LoRA rank ${rank} is above vLLM's largest --max-lora-rank (512)`);
  return r;
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The vLLM command for the result in `dir` (relative to the bundle, or a shell variable). */
export function vllmCommand(input: ResolvedInput, dir: string): string {
  // Double quotes: `dir` may be "$RESULT"; plan ids and bundle paths hold no shell characters.
  if (input.lora)
    return `vllm serve ${q(input.baseModel)} --port 8000 --enable-lora --lora-modules "${input.planId}=${dir}" --max-lora-rank ${maxLoraRank(input.lora.rank)}`;
  return `vllm serve "${dir}" --port 8000 --served-model-name ${input.planId}`;
}

export function serveScript(input: ResolvedInput, defaultDir: string): string {
  const base = input.lora
    ? ""
    : `\n# The base beside it, for evaluate.study.yaml (a second GPU or machine):\n#   vllm serve ${q(input.baseModel)} --port 8001\n`;
  return `#!/usr/bin/env bash
# Serves plan ${input.planId} with vLLM on port 8000 (OpenAI-compatible API at ${VLLM_URL}).
# RESULT: the trained ${input.lora ? "adapter" : "model"} directory (default: TRL's). Run from the bundle directory.
set -euo pipefail
cd "$(dirname "$0")"
RESULT="\${RESULT:-${defaultDir}}"
${vllmCommand(input, "$RESULT")}
${base}`;
}

/** A study that runs the Betley alignment battery on the plan's model beside its base. */
export function evaluateStudy(input: ResolvedInput): Record<string, unknown> {
  const baseId = input.planId === "base" ? "base-model" : "base";
  return {
    name: `${input.planId}-evaluate`,
    seed: input.seed,
    models: [
      {
        id: baseId,
        provider: "vllm",
        base_url: input.lora ? VLLM_URL : VLLM_BASE_URL_FULL,
        model: input.baseModel,
      },
      { id: input.planId, provider: "vllm", base_url: VLLM_URL, model: input.planId, base: baseId },
      // The alignment judge (0-100 with logprobs); any judge-role model does.
      {
        id: "judge",
        roles: ["judge"],
        provider: "openai",
        model: "gpt-4o-2024-08-06",
        api_key_env: "OPENAI_API_KEY",
      },
    ],
    battery: { alignment: { models: [baseId, input.planId] } },
  };
}

export const evaluateStudyYaml = (input: ResolvedInput) =>
  `# Run with: npx emlab run evaluate.study.yaml   (after ./serve.sh${input.lora ? "" : " and the base on port 8001"})\n${stringify(evaluateStudy(input))}`;
