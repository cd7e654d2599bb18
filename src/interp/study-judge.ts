/**
 * The sweep judge of an interp study: the study's own judge model, asked with the harmfulness
 * experiment's rubric (fillTemplate + readJudgeReply, as the battery asks it) and, when the
 * alignment experiment has one, its coherent prompt. Verdicts are booleans: harmful = rubric
 * score >= judge.thresholds.harmful_score; coherent = the coherence score passes the study's
 * cut, or, with no coherent prompt, the harm reply was readable.
 *
 * `sweepJudgeAsks` and `sweepVerdict` are the two halves the interp stage uses (its judge
 * questions are stored requests, src/interp/requests.ts); `studySweepJudge` asks a ModelApi
 * directly, for library use.
 */
import type { JudgeSetup } from "../battery/stage.ts";
import { type JudgeKind, judgeMessages, judgeParams, readJudgeReply } from "../judges/judge-call.ts";
import type { JudgeReading } from "../judges/reading.ts";
import { fillTemplate } from "../judges/template.ts";
import type { ChatMessage, ModelApi, SamplingParams } from "../models/types.ts";
import type { SweepJudge, SweepJudgement } from "./sweep.ts";

/** Thrown out of a sweep when the run's abort signal fires. */
export class InterpInterrupted extends Error {
  constructor() {
    super("interp: interrupted");
    this.name = "InterpInterrupted";
  }
}

/** How the sweep judge judges: the study's judge and its two prompts. */
export interface SweepJudgeSpec {
  setup: JudgeSetup;
  /** The harm rubric, slots {prompt} and {response}. */
  harmTemplate: string;
  /** The alignment experiment's coherent prompt, slots {question} and {answer}; null: none. */
  coherentTemplate: string | null;
  harmfulScore: number;
  isCoherent: (score: number) => boolean;
}

export interface StudyJudgeOptions extends SweepJudgeSpec {
  api: ModelApi;
  signal?: AbortSignal;
}

/** One question the judge is asked about one answer: the call exactly as it is sent. */
export interface SweepJudgeAsk {
  metric: "harm" | "coherent";
  kind: JudgeKind;
  messages: ChatMessage[];
  params: SamplingParams;
  /** The seed the call carries (0, as the sweep judge always asked). */
  seed: number;
}

/** The judge calls for one answer: the harm rubric, then the coherent prompt when there is one. */
export function sweepJudgeAsks(spec: SweepJudgeSpec, question: string, answer: string): SweepJudgeAsk[] {
  const ask = (metric: SweepJudgeAsk["metric"], kind: JudgeKind, prompt: string): SweepJudgeAsk => ({
    metric,
    kind,
    messages: judgeMessages(prompt),
    params: judgeParams(kind, spec.setup.options),
    seed: 0,
  });
  const asks = [
    ask(
      "harm",
      "rubric5",
      fillTemplate(spec.harmTemplate, { prompt: question, response: answer }, ["response"]),
    ),
  ];
  if (spec.coherentTemplate !== null)
    asks.push(
      ask("coherent", "score100", fillTemplate(spec.coherentTemplate, { question, answer }, ["answer"])),
    );
  return asks;
}

/** Reads one judge reply as the sweep judge reads it. */
export function readSweepReply(
  spec: SweepJudgeSpec,
  ask: Pick<SweepJudgeAsk, "kind">,
  reply: { text: string; logprobs?: Parameters<typeof readJudgeReply>[2] },
): JudgeReading {
  return readJudgeReply(ask.kind, reply.text, reply.logprobs, spec.setup.options);
}

/** The verdict from the readings of `sweepJudgeAsks`'s questions, in their order. */
export function sweepVerdict(spec: SweepJudgeSpec, readings: readonly JudgeReading[]): SweepJudgement {
  const [harm, coh] = readings;
  const harmful = harm.score !== null && harm.score >= spec.harmfulScore;
  if (spec.coherentTemplate === null) return { harmful, coherent: harm.score !== null };
  return { harmful, coherent: coh.score !== null && spec.isCoherent(coh.score) };
}

/** The sweep judge as a function asking the judge's ModelApi directly (nothing stored). */
export function studySweepJudge(o: StudyJudgeOptions): SweepJudge {
  return async (question, answer) => {
    const readings: JudgeReading[] = [];
    for (const a of sweepJudgeAsks(o, question, answer)) {
      if (o.signal?.aborted) throw new InterpInterrupted();
      const res = await o.api.chat({
        messages: a.messages,
        params: a.params,
        n: 1,
        seed: a.seed,
        signal: o.signal,
      });
      readings.push(readSweepReply(o, a, res.completions[0]));
    }
    return sweepVerdict(o, readings);
  };
}
