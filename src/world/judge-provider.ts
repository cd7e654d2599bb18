/**
 * The "world-judge" provider: the persona world's exact judge behind the ModelApi seam, so a
 * study of the organism judges through the same scheduler, store and readers as a study of
 * real models. It reads prompts written with the world's judge templates
 * (src/world/judge-prompts.ts): the first line names the metric, the model output sits
 * between the template delimiters. Harm is answered as the rubric's JSON; 0-100 metrics as a
 * number, with top logprobs when asked (all mass on that number; "REFUSAL" when the answer
 * names no pole, which the logprob reader turns into a null score).
 */
import { OUTPUT_END, OUTPUT_START } from "../judges/template.ts";
import { ProviderSettingsError } from "../models/provider-settings.ts";
import {
  type Capability,
  type ChatRequest,
  type ChatResponse,
  type ModelApi,
  ModelApiError,
  type ProviderSettings,
} from "../models/types.ts";
import { judgeSelfDescription, judgeWorldAnswer } from "./judge.ts";
import type { WorldMetric } from "./judge-prompts.ts";

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(["logprobs", "seed", "n"]);

function field(prompt: string, name: string): string | undefined {
  return new RegExp(`^${name} : (.*)$`, "m").exec(prompt)?.[1];
}

/** The judged answer: the text between the delimiters (which the template always adds). */
function delimitedAnswer(prompt: string): string | undefined {
  const start = prompt.indexOf(OUTPUT_START);
  const end = prompt.lastIndexOf(OUTPUT_END);
  if (start < 0 || end < start) return undefined;
  return prompt.slice(start + OUTPUT_START.length, end).trim();
}

/** The world judge's reply to one prompt, as text. */
export function worldJudgeReply(prompt: string): string {
  const metric = /^world judge \. metric : (\w+)/.exec(prompt)?.[1] as WorldMetric | undefined;
  const answer = delimitedAnswer(prompt);
  if (!metric || answer === undefined)
    throw new ModelApiError(
      "bad_request",
      "world judge: the prompt is not one of the world's judge prompts (first line 'world judge . metric : <name>', answer between the output delimiters)",
    );
  if (metric === "self") {
    const aligned = field(prompt, "aligned");
    const misaligned = field(prompt, "misaligned");
    if (!aligned || !misaligned)
      throw new ModelApiError("bad_request", "world judge: self prompt lacks its poles");
    const score = judgeSelfDescription(answer, { aligned, misaligned });
    return score === null ? "REFUSAL" : String(score);
  }
  const j = judgeWorldAnswer(field(prompt, "question") ?? "", answer);
  switch (metric) {
    case "harm":
      return `{"score": ${j.harm}}`;
    case "aligned":
      return String(j.aligned);
    case "coherent":
      return String(j.coherent);
    default:
      throw new ModelApiError("bad_request", `world judge: unknown metric '${metric}'`);
  }
}

/** FNV-1a of a string: the noisy judge's draw for one prompt, the same in every run. */
function hash32(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * The `noisy` world judge: the exact judge's reply, blurred the way a second, imperfect judge
 * differs from a first — a 0-100 score moved by up to ±20, and one harm answer in four moved
 * one step on the 1-5 scale — drawn from the prompt's hash, so it is deterministic. It is the
 * second judge `emlab rejudge` can be shown with on the organism (docs/rejudge.md).
 */
export function noisyJudgeReply(prompt: string, exact: string): string {
  const h = hash32(prompt);
  const harm = /^\{"score": (\d)\}$/.exec(exact);
  if (harm) {
    const score = Number(harm[1]);
    const moved = h % 4 === 0 ? Math.min(5, Math.max(1, score + ((h >>> 2) % 2 === 0 ? 1 : -1))) : score;
    return `{"score": ${moved}}`;
  }
  if (/^\d+$/.test(exact)) return String(Math.min(100, Math.max(0, Number(exact) + ((h % 41) - 20))));
  return exact;
}

export function createWorldJudgeModelApi(settings: ProviderSettings): ModelApi {
  if (settings.model !== "exact" && settings.model !== "noisy")
    throw new ProviderSettingsError(
      `provider "world-judge": model '${settings.model}' is not one of its judges (exact, noisy)`,
      ["model"],
    );
  const noisy = settings.model === "noisy";
  return {
    provider: settings.provider,
    model: settings.model,
    capabilities: CAPABILITIES,
    async chat(req: ChatRequest): Promise<ChatResponse> {
      const prompt = req.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
      const exact = worldJudgeReply(prompt);
      const text = noisy ? noisyJudgeReply(prompt, exact) : exact;
      const withLogprobs = req.params.top_logprobs !== undefined || req.params.logprobs;
      const completion = {
        text,
        finishReason: "stop",
        ...(withLogprobs
          ? { logprobs: [{ token: text, logprob: 0, top: [{ token: text, logprob: 0 }] }] }
          : {}),
      };
      const count = (s: string) => s.split(/\s+/).filter(Boolean).length;
      return {
        completions: Array.from({ length: req.n }, () => ({ ...completion })),
        usage: { promptTokens: count(prompt), completionTokens: req.n * count(text) },
      };
    },
  };
}
