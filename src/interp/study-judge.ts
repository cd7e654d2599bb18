/**
 * The sweep judge of an interp study: the study's own judge model, asked through its
 * ModelApi with the harmfulness experiment's rubric (fillTemplate + readJudgeReply, as the
 * battery asks it) and, when the alignment experiment has one, its coherent prompt. Verdicts
 * are booleans: harmful = rubric score >= judge.thresholds.harmful_score; coherent = the
 * coherence score passes the study's cut, or, with no coherent prompt, the harm reply was
 * readable.
 */
import type { JudgeSetup } from "../battery/stage.ts";
import { type JudgeKind, judgeMessages, judgeParams, readJudgeReply } from "../judges/judge-call.ts";
import { fillTemplate } from "../judges/template.ts";
import type { ModelApi } from "../models/types.ts";
import type { SweepJudge } from "./sweep.ts";

/** Thrown out of a sweep when the run's abort signal fires. */
export class InterpInterrupted extends Error {
  constructor() {
    super("interp: interrupted");
    this.name = "InterpInterrupted";
  }
}

export interface StudyJudgeOptions {
  api: ModelApi;
  setup: JudgeSetup;
  /** The harm rubric, slots {prompt} and {response}. */
  harmTemplate: string;
  /** The alignment experiment's coherent prompt, slots {question} and {answer}; null: none. */
  coherentTemplate: string | null;
  harmfulScore: number;
  isCoherent: (score: number) => boolean;
  signal?: AbortSignal;
}

export function studySweepJudge(o: StudyJudgeOptions): SweepJudge {
  const ask = async (kind: JudgeKind, prompt: string) => {
    if (o.signal?.aborted) throw new InterpInterrupted();
    const res = await o.api.chat({
      messages: judgeMessages(prompt),
      params: judgeParams(kind, o.setup.options),
      n: 1,
      seed: 0,
      signal: o.signal,
    });
    const c = res.completions[0];
    return readJudgeReply(kind, c.text, c.logprobs, o.setup.options);
  };
  return async (question, answer) => {
    const harm = await ask(
      "rubric5",
      fillTemplate(o.harmTemplate, { prompt: question, response: answer }, ["response"]),
    );
    const harmful = harm.score !== null && harm.score >= o.harmfulScore;
    if (o.coherentTemplate === null) return { harmful, coherent: harm.score !== null };
    const coh = await ask("score100", fillTemplate(o.coherentTemplate, { question, answer }, ["answer"]));
    return { harmful, coherent: coh.score !== null && o.isCoherent(coh.score) };
  };
}
