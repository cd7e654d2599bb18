import { AlignmentSchema, type Study } from "../config/schema.ts";
import { fillTemplate } from "../judges/template.ts";
import type { ChatMessage } from "../models/types.ts";
import { type AlignmentCounts, type AlignmentSummary, AlignmentSummarySchema } from "../results/battery.ts";
import type { JudgmentRow } from "../runs/rows.ts";
import {
  collectJudgments,
  type JudgeAsk,
  judgmentsByAnswer,
  methodCounts,
  planJudgeRequests,
} from "./judged.ts";
import { type BetleyQuestion, readBetleyYaml } from "./sources/betley-yaml.ts";
import { resolveSource } from "./sources/prompts.ts";
import { answerKey, type Experiment, storedAnswers, targetModels } from "./stage.ts";
import { mean, rate } from "./stats.ts";

/** A question with the source it came from; item ids are `<source>.<question id>.p<paraphrase>`. */
export interface SourcedQuestion extends BetleyQuestion {
  key: string;
  source: string;
}

export interface AlignmentInputs {
  questions: Map<string, SourcedQuestion>;
}

/** Betley cut-offs, strict by default (`inclusive` switches to <= / >=). */
export function betleyCuts(study: Study) {
  const t = study.judge.thresholds;
  return {
    isMisaligned: (aligned: number) => (t.inclusive ? aligned <= t.aligned_below : aligned < t.aligned_below),
    isCoherent: (coherent: number) =>
      t.inclusive ? coherent >= t.coherent_above : coherent > t.coherent_above,
  };
}

const parseItem = (itemId: string) => {
  const m = /^(.*)\.p(\d+)$/.exec(itemId);
  return m ? { key: m[1], paraphrase: Number(m[2]) } : undefined;
};

export const alignment: Experiment<AlignmentInputs, AlignmentSummary> = {
  name: "alignment",
  config: AlignmentSchema,
  summary: AlignmentSummarySchema,
  judged: true,
  enabled: (study) => study.battery.alignment?.enabled ?? false,
  models: (study) => targetModels(study, study.battery.alignment?.models),
  load(ctx) {
    const spec = ctx.study.battery.alignment!;
    const questions = new Map<string, SourcedQuestion>();
    spec.questions.forEach((src, i) => {
      const { file, shownAs } = resolveSource(src, ctx.studyFile, `battery.alignment.questions[${i}]`);
      const qs = readBetleyYaml(file, shownAs).slice(0, spec.limit);
      const source = "builtin" in src ? src.builtin : `s${i + 1}`;
      for (const q of qs)
        questions.set(`${source}.${q.id}`, { ...q, key: `${source}.${q.id}`, source: shownAs });
    });
    return { questions };
  },
  stages: [
    {
      step: 1,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.alignment!;
        return targetModels(ctx.study, spec.models).flatMap((modelId) =>
          [...inputs.questions.values()].flatMap((q) =>
            q.paraphrases.map((text, k) => {
              // Betley: the question's own system prompt is part of the question.
              const messages: ChatMessage[] = q.system ? [{ role: "system", content: q.system }] : [];
              messages.push({ role: "user", content: text });
              return {
                modelId,
                experiment: "alignment",
                itemId: `${q.key}.p${k}`,
                messages,
                params: spec.params,
                n: spec.samples ?? q.samples_per_paraphrase,
              };
            }),
          ),
        );
      },
    },
    {
      step: 2,
      plan(ctx, inputs) {
        const asks: JudgeAsk[] = [];
        for (const answer of storedAnswers(ctx, "alignment")) {
          const item = parseItem(answer.request.item_id);
          const q = item && inputs.questions.get(item.key);
          if (!q || !item) continue;
          for (const [metric, template] of Object.entries(q.judge_prompts))
            asks.push({
              answer,
              metric,
              kind: "score100",
              prompt: fillTemplate(
                template,
                { question: q.paraphrases[item.paraphrase], answer: answer.completion.text },
                ["answer"],
              ),
            });
        }
        return planJudgeRequests(ctx, "alignment", asks);
      },
      collect: (ctx) => collectJudgments(ctx, "alignment"),
    },
  ],
  summarize(ctx, inputs) {
    const { isMisaligned, isCoherent } = betleyCuts(ctx.study);
    const metrics = new Set<string>();
    for (const q of inputs.questions.values()) for (const m of Object.keys(q.judge_prompts)) metrics.add(m);
    const byMetric = new Map([...metrics].map((m) => [m, judgmentsByAnswer(ctx, m)]));
    const per_model: AlignmentSummary["per_model"] = {};
    for (const modelId of alignment.models(ctx.study)) {
      const rows = storedAnswers(ctx, "alignment", modelId).map((a) => {
        const key = answerKey(a.request.id, a.completion.sample_index);
        const j: Record<string, JudgmentRow | undefined> = {};
        for (const [m, map] of byMetric) j[m] = map.get(key);
        return { question: parseItem(a.request.item_id)?.key ?? a.request.item_id, j };
      });
      const summarizeRows = (rs: typeof rows): AlignmentCounts => {
        const aligned = rs.map((r) => r.j.aligned?.score ?? null);
        const coherent = rs.map((r) => r.j.coherent?.score ?? null);
        const withCoherent = coherent.filter((c): c is number => c !== null);
        const coherentIdx = rs.map(
          (_, i) => coherent[i] !== null && isCoherent(coherent[i]!) && aligned[i] !== null,
        );
        const pool = aligned.filter((a, i) => coherentIdx[i] && a !== null) as number[];
        const nulls: Record<string, Record<string, number>> = {};
        for (const m of metrics) {
          const js = rs.map((r) => r.j[m]).filter((x): x is JudgmentRow => !!x && x.score === null);
          if (js.length) nulls[m] = methodCounts(js) as Record<string, number>;
        }
        return {
          answers: rs.length,
          scored: rs.filter((_, i) => aligned[i] !== null && coherent[i] !== null).length,
          coherent: rate(withCoherent.filter(isCoherent).length, withCoherent.length),
          misaligned: rate(pool.filter(isMisaligned).length, pool.length),
          mean_aligned: mean(aligned.filter((a): a is number => a !== null)),
          mean_coherent: mean(withCoherent),
          null_scores: nulls,
          methods: methodCounts(
            rs.flatMap((r) => Object.values(r.j).filter((x): x is JudgmentRow => !!x)),
          ) as Record<string, number>,
        };
      };
      const per_question: Record<string, AlignmentCounts> = {};
      for (const q of new Set(rows.map((r) => r.question)))
        per_question[q] = summarizeRows(rows.filter((r) => r.question === q));
      per_model[modelId] = { ...summarizeRows(rows), per_question };
    }
    return { per_model };
  },
};
