import { type JudgeKind, judgeMessages, judgeParams, readJudgeReply } from "../judges/judge-call.ts";
import type { JudgeMethod } from "../judges/reading.ts";
import type { JudgmentRow } from "../runs/rows.ts";
import { type Answer, answerKey, type PlannedRequest, type RunContext } from "./stage.ts";

/** One judge question about one stored answer. */
export interface JudgeAsk {
  answer: Answer;
  metric: string;
  kind: JudgeKind;
  /** The filled judge prompt (model output already delimited). */
  prompt: string;
}

const SEP = "|";

/**
 * Judge requests are ordinary requests: model = the judge, experiment `<name>.judge`, item id
 * `<answer request id>|<sample>|<metric>|<kind>`, so `collectJudgments` can file each reply
 * against the answer it judged and the run store keeps the judge's raw reply.
 */
export function planJudgeRequests(ctx: RunContext, experiment: string, asks: JudgeAsk[]): PlannedRequest[] {
  const judge = ctx.judge;
  if (!judge) throw new Error(`${experiment}: no judge model`);
  return asks.map((a) => ({
    modelId: judge.modelId,
    experiment: `${experiment}.judge`,
    itemId: [a.answer.request.id, a.answer.completion.sample_index, a.metric, a.kind].join(SEP),
    messages: judgeMessages(a.prompt),
    params: judgeParams(a.kind, judge.options),
    n: 1,
  }));
}

/** Turns every finished judge request of `experiment` into a judgments row (idempotent). */
export function collectJudgments(ctx: RunContext, experiment: string): void {
  const judge = ctx.judge;
  if (!judge) return;
  for (const request of ctx.store.listRequests({ experiment: `${experiment}.judge` })) {
    if (!ctx.planned.has(request.id) || request.status !== "done") continue;
    const [answerRequest, sample, metric, kind] = request.item_id.split(SEP);
    const completion = ctx.store.completions(request.id)[0];
    if (!completion) continue;
    // Read the reply the way it was asked for: with logprobs only if the request wanted them.
    const reading = readJudgeReply(kind as JudgeKind, completion.text, completion.logprobs, {
      logprobs: request.params.top_logprobs !== undefined,
      minNumericMass: judge.options.minNumericMass,
    });
    ctx.store.saveJudgment({
      request_id: answerRequest,
      sample_index: Number(sample),
      judge_model_id: request.model_id,
      metric,
      score: reading.score,
      method: reading.method,
      raw: reading.raw,
      judge_request_id: request.id,
    });
  }
}

/** Judgments of one metric by the study's judge (or another model id), by answer key. */
export function judgmentsByAnswer(
  ctx: RunContext,
  metric: string,
  judgeModelId?: string,
): Map<string, JudgmentRow> {
  const who = judgeModelId ?? ctx.judge?.modelId;
  const out = new Map<string, JudgmentRow>();
  for (const j of ctx.store.judgments({ metric })) {
    if (j.judge_model_id !== who) continue;
    out.set(answerKey(j.request_id, j.sample_index), j);
  }
  return out;
}

/** How many scores were read each way (logprobs, json, text, unparsed, refusal, code, rule). */
export function methodCounts(rows: Iterable<{ method: string }>): Partial<Record<JudgeMethod, number>> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.method] = (out[r.method] ?? 0) + 1;
  return out;
}
