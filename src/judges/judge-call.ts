import type { ChatMessage, SamplingParams, TokenLogprob } from "../models/types.ts";
import { readLogprobJudge } from "./logprob-weighted.ts";
import type { JudgeReading } from "./reading.ts";
import { readRubricScore } from "./rubric-json.ts";
import { readTextScore } from "./text-number.ts";

/**
 * How one judge question is asked and read:
 * - "score100": Betley 0-100 — logprob-weighted when the judge model has logprobs, else the
 *   number it writes (flagged "text");
 * - "rubric5": the 1-5 rubric answered as JSON `{"score": n}`.
 */
export type JudgeKind = "score100" | "rubric5";

export interface JudgeOptions {
  /** Whether the judge model returns top logprobs. */
  logprobs: boolean;
  /** Logprob judge: null below this numeric probability mass (docs/methods.md §4: 0.25). */
  minNumericMass: number;
  topLogprobs: number;
  /** Completion budget for judges that answer in text. */
  textMaxTokens: number;
}

export function judgeParams(kind: JudgeKind, o: JudgeOptions): SamplingParams {
  if (kind === "score100" && o.logprobs)
    return { max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: o.topLogprobs };
  return { max_tokens: o.textMaxTokens, temperature: 0 };
}

export function judgeMessages(prompt: string): ChatMessage[] {
  return [{ role: "user", content: prompt }];
}

export function readJudgeReply(
  kind: JudgeKind,
  text: string,
  logprobs: readonly TokenLogprob[] | null | undefined,
  o: Pick<JudgeOptions, "logprobs" | "minNumericMass">,
): JudgeReading {
  if (kind === "rubric5") return readRubricScore(text);
  if (o.logprobs && logprobs) return readLogprobJudge(text, logprobs, o.minNumericMass);
  return readTextScore(text);
}
