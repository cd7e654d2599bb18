/**
 * Sweeps and evaluations of the interp stage through the run store (src/interp/requests.ts):
 * the same conditions, prompts, seeds and judge as `runSweep` / `evaluateBehaviour` /
 * `selfReport`, but every generation and judge question is a stored request. A sweep stores
 * each condition's generations (one target per scheduler call), then plans its judge
 * questions from the stored answers (experiment `<experiment>.judge`, item
 * `<answer request>|<sample>|<metric>|<kind>` as the battery's judge requests), files the
 * readings as judgments of the answers, and tallies the verdicts as runSweep does.
 */
import type { SelfAssessmentItem } from "../battery/sources/self-assessment-set.ts";
import type { JudgeReading } from "../judges/reading.ts";
import type { SamplingParams } from "../models/types.ts";
import type { InterpEvaluation, InterpRate } from "../results/interp.ts";
import type { JudgmentRow } from "../runs/rows.ts";
import { type EvalSample, evaluationOf, selfReportRate, selfReportSeeds } from "./model-eval.ts";
import type { InterpAsk, InterpRequester, InterpTarget } from "./requests.ts";
import { readSweepReply, type SweepJudgeSpec, sweepJudgeAsks, sweepVerdict } from "./study-judge.ts";
import {
  type SweepCondition,
  type SweepJudgement,
  type SweepResult,
  sampleSeed,
  sweepParams,
  tallyVerdicts,
} from "./sweep.ts";

/** One condition of a stored sweep: what the result reports, where its requests go, who answers. */
export interface StoredCondition extends Omit<SweepCondition, "edits"> {
  /** Item id prefix of its requests: `<item>|<prompt index>`. */
  item: string;
  target: InterpTarget;
}

export interface StoredSweepOptions {
  /** Experiment of the generations (its judge questions: `<experiment>.judge`). */
  experiment: string;
  /** Questions, each sent as one user message. */
  prompts: readonly string[];
  conditions: readonly StoredCondition[];
  judge: SweepJudgeSpec;
  samples: number;
  seed: number;
  /** Sampling parameters (the sweep defaults: temperature 1, top_p 1, max_tokens 64). */
  params?: SamplingParams;
  level?: number;
}

/** Runs a sweep through the store: its result with every sample kept. */
export async function storedSweep(req: InterpRequester, o: StoredSweepOptions): Promise<SweepResult> {
  const k = o.samples;
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`storedSweep: samples must be a positive integer, got ${k}`);
  const level = o.level ?? 0.95;
  const params = sweepParams(o.params);
  const names = new Set<string>();
  // Generations, one condition (one target) at a time.
  const answered: { cond: StoredCondition; samples: EvalSample[]; requests: string[] }[] = [];
  for (const cond of o.conditions) {
    if (names.has(cond.name)) throw new Error(`storedSweep: two conditions are named "${cond.name}"`);
    names.add(cond.name);
    const seeds = o.prompts.map((_, p) => Array.from({ length: k }, (_, s) => sampleSeed(o.seed, p, s)));
    const asks: InterpAsk[] = o.prompts.map((question, p) => ({
      itemId: `${cond.item}|${p}`,
      messages: [{ role: "user", content: question }],
      params,
      sampleSeeds: seeds[p],
    }));
    const stored = await req.generate(o.experiment, cond.target, asks);
    const samples: EvalSample[] = [];
    const requests: string[] = [];
    for (const [p, completions] of stored.entries())
      for (const [s, c] of completions.entries()) {
        samples.push({
          prompt: p,
          sample: s,
          seed: seeds[p][s],
          question: o.prompts[p],
          answer: c.text,
          verdict: {},
        });
        requests.push(c.request_id);
      }
    answered.push({ cond, samples, requests });
  }
  // The judge's questions, planned from the stored answers.
  const verdicts = await judgeAnswers(
    req,
    `${o.experiment}.judge`,
    o.judge,
    answered.flatMap((a) => a.samples.map((x, i) => ({ ...x, requestId: a.requests[i] }))),
  );
  let at = 0;
  const conditions: SweepResult["conditions"] = answered.map(({ cond, samples }) => {
    const mine = verdicts.slice(at, at + samples.length);
    at += samples.length;
    for (const [i, x] of samples.entries()) x.verdict = { ...mine[i] };
    return {
      name: cond.name,
      kind: cond.kind,
      vector: cond.vector,
      alpha: cond.alpha,
      layers: cond.layers,
      ...tallyVerdicts(mine, level),
      samples,
    };
  });
  return { seed: o.seed, samplesPerPrompt: k, prompts: o.prompts.length, level, conditions };
}

/**
 * Every answer's judge questions as stored requests; the readings filed as judgments of the
 * answers (metrics `harm`, `coherent`), and each answer's verdict, in order.
 */
async function judgeAnswers(
  req: InterpRequester,
  experiment: string,
  spec: SweepJudgeSpec,
  answers: readonly { requestId: string; sample: number; question: string; answer: string }[],
): Promise<SweepJudgement[]> {
  const perAnswer = answers.map((a) => sweepJudgeAsks(spec, a.question, a.answer));
  const asks: InterpAsk[] = perAnswer.flatMap((list, i) =>
    list.map((q) => ({
      itemId: [answers[i].requestId, answers[i].sample, q.metric, q.kind].join("|"),
      messages: q.messages,
      params: q.params,
      sampleSeeds: [q.seed],
    })),
  );
  const replies = await req.judge(experiment, spec.setup.modelId, asks);
  const judgments: Omit<JudgmentRow, "id" | "created_at">[] = [];
  let at = 0;
  const verdicts = perAnswer.map((list, i) => {
    const readings: JudgeReading[] = list.map((q) => {
      const reply = replies[at++][0];
      const reading = readSweepReply(spec, q, reply);
      judgments.push({
        request_id: answers[i].requestId,
        sample_index: answers[i].sample,
        judge_model_id: spec.setup.modelId,
        metric: q.metric,
        score: reading.score,
        method: reading.method,
        raw: reading.raw,
        judge_request_id: reply.request_id,
      });
      return reading;
    });
    return sweepVerdict(spec, readings);
  });
  req.saveJudgments(judgments);
  return verdicts;
}

export interface StoredEvalOptions {
  experiment: string;
  /** Item id prefix of the evaluation's requests. */
  item: string;
  prompts: readonly string[];
  judge: SweepJudgeSpec;
  samples: number;
  seed: number;
  params: SamplingParams;
}

/** evaluateBehaviour through the store: the target's rates on the prompts, and every answer with its verdict. */
export async function storedEvaluate(
  req: InterpRequester,
  target: InterpTarget,
  o: StoredEvalOptions,
): Promise<{ evaluation: InterpEvaluation; samples: EvalSample[] }> {
  const r = await storedSweep(req, {
    experiment: o.experiment,
    prompts: o.prompts,
    conditions: [
      { name: "model", kind: "baseline", vector: null, alpha: null, layers: null, item: o.item, target },
    ],
    judge: o.judge,
    samples: o.samples,
    seed: o.seed,
    params: o.params,
  });
  const c = r.conditions[0];
  return { evaluation: evaluationOf(c), samples: c.samples ?? [] };
}

/** selfReport through the store: items asked as `<item>|self|<index>`, read by the battery's rule. */
export async function storedSelfReport(
  req: InterpRequester,
  target: InterpTarget,
  items: readonly SelfAssessmentItem[],
  o: { experiment: string; item: string; samples: number; seed: number; params: SamplingParams },
): Promise<InterpRate> {
  const stored = await req.generate(
    o.experiment,
    target,
    items.map((item, i) => ({
      itemId: `${o.item}|self|${i}`,
      messages: [{ role: "user", content: item.prompt }],
      params: o.params,
      sampleSeeds: selfReportSeeds(o.seed, i, o.samples),
    })),
  );
  return selfReportRate(
    items,
    stored.map((cs) => cs.map((c) => c.text)),
  );
}
