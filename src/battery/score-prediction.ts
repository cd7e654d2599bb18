import { spearman } from "../analysis/correlation.ts";
import { ScorePredictionSchema, type Study } from "../config/schema.ts";
import { readRubricScore } from "../judges/rubric-json.ts";
import { fillTemplate } from "../judges/template.ts";
import {
  type CrossRatingSummary,
  CrossRatingSummarySchema,
  type PredictionModelSummary,
  type PredictionRank,
  ScorePredictionSummarySchema,
} from "../results/battery.ts";
import type { ErrorStats } from "../results/common.ts";
import { harmfulness, harmScores } from "./harmfulness.ts";
import { studyTaskPrompts } from "./sources/task-prompts.ts";
import {
  type Answer,
  answerKey,
  type Experiment,
  type PlannedRequest,
  type RunContext,
  storedAnswers,
  targetModels,
  userPrompt,
} from "./stage.ts";
import { mean } from "./stats.ts";

/**
 * Judged outputs of one model, spread over the judge's scores: one per score in turn (lowest
 * score first), so a short list still covers harmless and harmful outputs alike.
 */
function spreadOverScores(
  ctx: RunContext,
  modelId: string,
  max: number,
): Array<{ a: Answer; actual: number }> {
  const scores = harmScores(ctx);
  const buckets = new Map<number, Array<{ a: Answer; actual: number }>>();
  for (const a of storedAnswers(ctx, "harmfulness", modelId)) {
    const s = scores.get(answerKey(a.request.id, a.completion.sample_index));
    if (s === null || s === undefined) continue;
    buckets.set(s, [...(buckets.get(s) ?? []), { a, actual: s }]);
  }
  const order = [...buckets.keys()].sort((x, y) => x - y);
  const out: Array<{ a: Answer; actual: number }> = [];
  for (let round = 0; out.length < max; round++) {
    let took = false;
    for (const s of order) {
      const b = buckets.get(s)!;
      if (round < b.length && out.length < max) {
        out.push(b[round]);
        took = true;
      }
    }
    if (!took) break;
  }
  return out;
}

/** Spearman's rho of predicted against actual (null when n < 4 or a side is constant). */
export function rankAgreement(pairs: Array<{ predicted: number; actual: number }>): PredictionRank | null {
  // Fisher's interval needs n > 3.
  if (pairs.length < 4) return null;
  try {
    const c = spearman(
      pairs.map((p) => p.predicted),
      pairs.map((p) => p.actual),
    );
    return { rho: c.r, p: c.p, ci: c.ci, n: c.n };
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

function errorStats(pairs: Array<{ predicted: number; actual: number }>): ErrorStats {
  return {
    n: pairs.length,
    mean_error: mean(pairs.map((p) => p.predicted - p.actual)),
    mean_abs_error: mean(pairs.map((p) => Math.abs(p.predicted - p.actual))),
    mean_predicted: mean(pairs.map((p) => p.predicted)),
  };
}

/** Predictions stored for `experiment` (item id ends `<answer request>:<sample>`), with the judge's actual score. */
function predictions(ctx: RunContext, experiment: string, modelId: string) {
  const scores = harmScores(ctx);
  return storedAnswers(ctx, experiment, modelId).map((p) => {
    const parts = p.request.item_id.split(":");
    const actual = scores.get(answerKey(parts.at(-2)!, Number(parts.at(-1)))) ?? null;
    const predicted = readRubricScore(p.completion.text).score;
    return { rated: parts.length > 2 ? parts[0] : modelId, actual, predicted, item: p.request.item_id };
  });
}

const valid = <T extends { predicted: number | null; actual: number | null }>(
  r: T,
): r is T & { predicted: number; actual: number } => r.predicted !== null && r.actual !== null;

export const scorePrediction: Experiment<
  { template: string },
  { per_model: Record<string, PredictionModelSummary> }
> = {
  name: "score_prediction",
  config: ScorePredictionSchema,
  summary: ScorePredictionSummarySchema,
  judged: true,
  enabled: (study) => study.battery.score_prediction?.enabled ?? false,
  models: (study) => {
    const harm = harmfulness.models(study);
    return targetModels(study, study.battery.score_prediction?.models).filter((m) => harm.includes(m));
  },
  load: (ctx) => ({ template: studyTaskPrompts(ctx).score_prediction_self }),
  stages: [
    {
      step: 3,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.score_prediction!;
        return scorePrediction.models(ctx.study).flatMap((modelId) =>
          spreadOverScores(ctx, modelId, spec.max_items).map(({ a }) => ({
            modelId,
            experiment: "score_prediction",
            itemId: `${a.request.id}:${a.completion.sample_index}`,
            messages: [
              {
                role: "user" as const,
                content: fillTemplate(
                  inputs.template,
                  { prompt: userPrompt(a.request), response: a.completion.text },
                  ["response"],
                ),
              },
            ],
            params: spec.params,
            n: spec.samples,
          })),
        );
      },
    },
  ],
  summarize(ctx) {
    const per_model: Record<string, PredictionModelSummary> = {};
    for (const modelId of scorePrediction.models(ctx.study)) {
      const rows = predictions(ctx, "score_prediction", modelId);
      const ok = rows.filter(valid);
      const by_actual: Record<string, ErrorStats> = {};
      for (const s of [...new Set(ok.map((r) => r.actual))].sort((x, y) => x - y))
        by_actual[String(s)] = errorStats(ok.filter((r) => r.actual === s));
      per_model[modelId] = {
        items: new Set(rows.map((r) => r.item)).size,
        answers: rows.length,
        unparsed: rows.filter((r) => r.predicted === null).length,
        ...errorStats(ok),
        by_actual,
        spearman: rankAgreement(ok),
      };
    }
    return { per_model };
  },
};

/** Raters: the configured list, else every model with the rater role, else the harmfulness targets. */
export function raterModels(study: Study): string[] {
  const cr = study.battery.score_prediction?.cross_rating;
  if (cr?.raters) return cr.raters;
  const raters = study.models.filter((m) => m.roles.includes("rater")).map((m) => m.id);
  return raters.length ? raters : harmfulness.models(study);
}

export const crossRating: Experiment<{ template: string }, CrossRatingSummary> = {
  name: "cross_rating",
  summary: CrossRatingSummarySchema,
  judged: true,
  enabled: (study) =>
    (study.battery.score_prediction?.enabled ?? false) &&
    (study.battery.score_prediction?.cross_rating.enabled ?? false),
  models: (study) => raterModels(study),
  load: (ctx) => ({ template: studyTaskPrompts(ctx).score_prediction_other }),
  stages: [
    {
      step: 3,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.score_prediction!;
        const out: PlannedRequest[] = [];
        for (const rated of harmfulness.models(ctx.study)) {
          const items = spreadOverScores(ctx, rated, spec.cross_rating.max_items);
          for (const rater of raterModels(ctx.study))
            for (const { a } of items)
              out.push({
                modelId: rater,
                experiment: "cross_rating",
                itemId: `${rated}:${a.request.id}:${a.completion.sample_index}`,
                messages: [
                  {
                    role: "user",
                    content: fillTemplate(
                      inputs.template,
                      { prompt: userPrompt(a.request), response: a.completion.text },
                      ["response"],
                    ),
                  },
                ],
                params: spec.params,
                n: spec.samples,
              });
        }
        return out;
      },
    },
  ],
  summarize(ctx) {
    const raters = raterModels(ctx.study);
    const rated = harmfulness.models(ctx.study);
    const matrix: CrossRatingSummary["matrix"] = {};
    for (const rater of raters) {
      const rows = predictions(ctx, "cross_rating", rater);
      matrix[rater] = {};
      for (const r of rated) {
        const mine = rows.filter((x) => x.rated === r);
        matrix[rater][r] = {
          ...errorStats(mine.filter(valid)),
          unparsed: mine.filter((x) => x.predicted === null).length,
        };
      }
    }
    return { raters, rated, matrix };
  },
};
