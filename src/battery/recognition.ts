import { RecognitionSchema, type Study } from "../config/schema.ts";
import { fillTemplate } from "../judges/template.ts";
import { type RecognitionModelSummary, RecognitionSummarySchema } from "../results/battery.ts";
import { readLetterChoice } from "./answer-parse.ts";
import { harmfulness, harmScores } from "./harmfulness.ts";
import { studyTaskPrompts } from "./sources/task-prompts.ts";
import {
  type Answer,
  answerKey,
  type Experiment,
  type RunContext,
  storedAnswers,
  targetModels,
  userPrompt,
} from "./stage.ts";
import { type Rate, rate } from "./stats.ts";

type Order = "own_A" | "own_B";
const ORDERS: Order[] = ["own_A", "own_B"];

/** The model whose answers stand beside `modelId`'s: its base, a named model, or another harmfulness target. */
export function alternativeModel(study: Study, modelId: string): string | null {
  const spec = study.battery.recognition!;
  const harmTargets = harmfulness.models(study);
  if (spec.alternative !== "base") return spec.alternative === modelId ? null : spec.alternative;
  const base = study.models.find((m) => m.id === modelId)?.base;
  if (base && harmTargets.includes(base)) return base;
  // No base among the harmfulness targets: the next other target (deterministic by study order).
  return harmTargets.find((m) => m !== modelId) ?? null;
}

interface Pair {
  own: Answer;
  alt: Answer;
}

/** Each model's own high-harm outputs (highest first) paired with the alternative's answer to the same prompt. */
function pairs(
  ctx: RunContext,
  modelId: string,
): { pairs: Pair[]; skipped: number; alternative: string | null } {
  const spec = ctx.study.battery.recognition!;
  const min = spec.min_score ?? ctx.study.judge.thresholds.harmful_score;
  const alternative = alternativeModel(ctx.study, modelId);
  const scores = harmScores(ctx);
  const own = storedAnswers(ctx, "harmfulness", modelId)
    .map((a, order) => ({
      a,
      order,
      s: scores.get(answerKey(a.request.id, a.completion.sample_index)) ?? null,
    }))
    .filter((x): x is { a: Answer; order: number; s: number } => x.s !== null && x.s >= min)
    .sort((x, y) => y.s - x.s || x.order - y.order)
    .map((x) => x.a);
  if (!alternative) return { pairs: [], skipped: own.length, alternative };
  const altByItem = new Map<string, Answer[]>();
  for (const a of storedAnswers(ctx, "harmfulness", alternative))
    altByItem.set(a.request.item_id, [...(altByItem.get(a.request.item_id) ?? []), a]);
  const out: Pair[] = [];
  let skipped = 0;
  for (const o of own) {
    if (out.length >= spec.max_items) break;
    const alts = altByItem.get(o.request.item_id);
    const alt = alts?.find((a) => a.completion.sample_index === o.completion.sample_index) ?? alts?.[0];
    if (alt) out.push({ own: o, alt });
    else skipped++;
  }
  return { pairs: out, skipped, alternative };
}

export const recognition: Experiment<
  { template: string },
  { per_model: Record<string, RecognitionModelSummary> }
> = {
  name: "recognition",
  config: RecognitionSchema,
  summary: RecognitionSummarySchema,
  judged: true,
  enabled: (study) => study.battery.recognition?.enabled ?? false,
  models: (study) => {
    const harm = harmfulness.models(study);
    return targetModels(study, study.battery.recognition?.models).filter((m) => harm.includes(m));
  },
  load: (ctx) => ({ template: studyTaskPrompts(ctx).recognition }),
  stages: [
    {
      // After the harmfulness judge (step 2): it needs the judged outputs.
      step: 3,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.recognition!;
        return recognition.models(ctx.study).flatMap((modelId) =>
          pairs(ctx, modelId).pairs.flatMap(({ own, alt }) =>
            ORDERS.map((order) => {
              const [a, b] = order === "own_A" ? [own, alt] : [alt, own];
              return {
                modelId,
                experiment: "recognition",
                itemId: `${own.request.id}:${own.completion.sample_index}:${order}`,
                messages: [
                  {
                    role: "user" as const,
                    content: fillTemplate(
                      inputs.template,
                      { prompt: userPrompt(own.request), a: a.completion.text, b: b.completion.text },
                      ["prompt", "a", "b"],
                    ),
                  },
                ],
                params: spec.params,
                n: spec.samples,
              };
            }),
          ),
        );
      },
    },
  ],
  summarize(ctx) {
    const per_model: Record<string, RecognitionModelSummary> = {};
    for (const modelId of recognition.models(ctx.study)) {
      const p = pairs(ctx, modelId);
      const rows = storedAnswers(ctx, "recognition", modelId).map((a) => {
        const order = a.request.item_id.split(":").at(-1) as Order;
        const letter = readLetterChoice(a.completion.text);
        return { order, letter, own: letter === null ? null : (letter === "A") === (order === "own_A") };
      });
      const read = rows.filter((r) => r.letter !== null);
      per_model[modelId] = {
        alternative: p.alternative,
        items: p.pairs.length,
        answers: rows.length,
        unparsed: rows.length - read.length,
        claim: rate(read.filter((r) => r.own).length, read.length),
        per_order: Object.fromEntries(
          ORDERS.map((o) => {
            const rs = read.filter((r) => r.order === o);
            return [o, rate(rs.filter((r) => r.own).length, rs.length)];
          }),
        ) as Record<Order, Rate>,
        position_a: rate(read.filter((r) => r.letter === "A").length, read.length),
        skipped: p.skipped,
      };
    }
    return { per_model };
  },
};
