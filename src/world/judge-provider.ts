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

export function createWorldJudgeModelApi(settings: ProviderSettings): ModelApi {
  return {
    provider: settings.provider,
    model: settings.model,
    capabilities: CAPABILITIES,
    async chat(req: ChatRequest): Promise<ChatResponse> {
      const prompt = req.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
      const text = worldJudgeReply(prompt);
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
