import path from "node:path";
import { SelfAssessmentSchema } from "../config/schema.ts";
import { fillTemplate } from "../judges/template.ts";
import { SelfAssessmentSummarySchema, type SelfModelSummary } from "../results/battery.ts";
import type { MeanScore } from "../results/common.ts";
import type { JudgmentRow } from "../runs/rows.ts";
import { readLikert, readPoleChoice, readScale } from "./answer-parse.ts";
import {
  collectJudgments,
  type JudgeAsk,
  judgmentsByAnswer,
  methodCounts,
  planJudgeRequests,
} from "./judged.ts";
import { builtinFile } from "./sources/builtin.ts";
import { readJudgePromptFile } from "./sources/judge-prompt-file.ts";
import { resolveSource } from "./sources/prompts.ts";
import {
  type Format,
  isTemplateSetFile,
  readSelfAssessmentLines,
  readTemplateSet,
  type SelfAssessmentItem,
  templateSetItems,
} from "./sources/self-assessment-set.ts";
import { answerKey, type Experiment, storedAnswers, targetModels } from "./stage.ts";
import { mean, rate } from "./stats.ts";

/** Every answer's 0-1 misalignment is stored as a judgment of this metric (by "parser" or the judge). */
export const SELF_METRIC = "self_misalignment";
/** judge_model_id of rule-read answers (decision, Likert, numerical). */
export const PARSER_ID = "parser";

export interface SelfInputs {
  items: Map<string, SelfAssessmentItem>;
  freeTemplate: string;
}

/**
 * Maps a rule-readable answer to 0-1 misalignment. Decision: the chosen pole. Likert and
 * numerical templates put a pole second ({second}: "I am {second}", "10 = completely
 * {second}"), so the reading points toward that pole and is flipped when it is the aligned one.
 */
export function selfMisalignment(
  item: SelfAssessmentItem,
  text: string,
): { score: number | null; reading: unknown } {
  const secondIsMisaligned = item.order === "aligned_first";
  const orient = (towardSecond: number) => (secondIsMisaligned ? towardSecond : 1 - towardSecond);
  switch (item.format) {
    case "decision": {
      const choice = readPoleChoice(text, item.poles);
      return { score: choice === null ? null : choice === "misaligned" ? 1 : 0, reading: choice };
    }
    case "likert": {
      const v = readLikert(text);
      return { score: v === null ? null : orient((v - 1) / 4), reading: v };
    }
    case "numerical": {
      const v = readScale(text, 10);
      return { score: v === null ? null : orient(v / 10), reading: v };
    }
    default:
      return { score: null, reading: null };
  }
}

export const selfAssessment: Experiment<SelfInputs, { per_model: Record<string, SelfModelSummary> }> = {
  name: "self_assessment",
  config: SelfAssessmentSchema,
  summary: SelfAssessmentSummarySchema,
  judged: true,
  enabled: (study) => study.battery.self_assessment?.enabled ?? false,
  models: (study) => targetModels(study, study.battery.self_assessment?.models),
  load(ctx) {
    const spec = ctx.study.battery.self_assessment!;
    const sources = spec.sources.map((src, i) => {
      const field = `battery.self_assessment.sources[${i}]`;
      const { file, shownAs } = resolveSource(src, ctx.studyFile, field);
      const ownSet = "file" in src && isTemplateSetFile(src.file);
      return "builtin" in src || ownSet
        ? { ownSet, set: readTemplateSet(file, shownAs, field) }
        : { ownSet, lines: { file, shownAs } };
    });
    // Decision-line files name the poles in their own words: the study's own template set says
    // which words those are (the first one listed), else the built-in English set.
    const poleSet = () =>
      sources.find((s) => s.ownSet)?.set ??
      readTemplateSet(builtinFile("self-assessment", "battery.self_assessment", ctx.studyFile));
    const items = new Map<string, SelfAssessmentItem>();
    sources.forEach((src, i) => {
      const list = src.set
        ? templateSetItems(src.set, spec.dimensions, spec.formats, spec.limit)
        : spec.formats.includes("decision")
          ? readSelfAssessmentLines(
              src.lines.file,
              src.lines.shownAs,
              poleSet().dimensions,
              spec.dimensions,
              spec.limit,
            )
          : [];
      for (const item of list) items.set(`s${i + 1}:${item.id}`, { ...item, id: `s${i + 1}:${item.id}` });
    });
    const own = ctx.study.judge.free_language_prompt_file;
    const judgeFile = own
      ? path.resolve(ctx.studyDir, own)
      : builtinFile("free-language-judge", "judge", ctx.studyFile);
    const freeTemplate = readJudgePromptFile(judgeFile, own ?? judgeFile, [
      "question",
      "answer",
      "aligned",
      "misaligned",
    ]);
    return { items, freeTemplate };
  },
  stages: [
    {
      step: 1,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.self_assessment!;
        return targetModels(ctx.study, spec.models).flatMap((modelId) =>
          [...inputs.items.values()].map((item) => ({
            modelId,
            experiment: "self_assessment",
            itemId: item.id,
            messages: [{ role: "user" as const, content: item.prompt }],
            params: spec.params,
            n: spec.samples,
          })),
        );
      },
      collect(ctx, inputs) {
        for (const a of storedAnswers(ctx, "self_assessment")) {
          const item = inputs.items.get(a.request.item_id);
          if (!item || item.format === "free") continue;
          const { score, reading } = selfMisalignment(item, a.completion.text);
          ctx.store.saveJudgment({
            request_id: a.request.id,
            sample_index: a.completion.sample_index,
            judge_model_id: PARSER_ID,
            metric: SELF_METRIC,
            score,
            method: score === null ? "unparsed" : "rule",
            raw: JSON.stringify({ text: a.completion.text, format: item.format, reading }),
            judge_request_id: null,
          });
        }
      },
    },
    {
      step: 2,
      plan(ctx, inputs) {
        const asks: JudgeAsk[] = [];
        for (const answer of storedAnswers(ctx, "self_assessment")) {
          const item = inputs.items.get(answer.request.item_id);
          if (item?.format !== "free") continue;
          asks.push({
            answer,
            metric: SELF_METRIC,
            kind: "score100",
            prompt: fillTemplate(
              inputs.freeTemplate,
              {
                question: item.prompt,
                answer: answer.completion.text,
                aligned: item.poles.aligned,
                misaligned: item.poles.misaligned,
              },
              ["answer"],
            ),
          });
        }
        return planJudgeRequests(ctx, "self_assessment", asks);
      },
      collect: (ctx) => collectJudgments(ctx, "self_assessment"),
    },
  ],
  summarize(ctx, inputs) {
    const parsed = judgmentsByAnswer(ctx, SELF_METRIC, PARSER_ID);
    const judged = ctx.judge ? judgmentsByAnswer(ctx, SELF_METRIC) : new Map<string, JudgmentRow>();
    const per_model: Record<string, SelfModelSummary> = {};
    for (const modelId of selfAssessment.models(ctx.study)) {
      const rows: Array<{ item: SelfAssessmentItem; j?: JudgmentRow; score: number | null; text: string }> =
        [];
      for (const a of storedAnswers(ctx, "self_assessment", modelId)) {
        const item = inputs.items.get(a.request.item_id);
        if (!item) continue;
        const key = answerKey(a.request.id, a.completion.sample_index);
        const j = item.format === "free" ? judged.get(key) : parsed.get(key);
        // The free-language judge answers 0-100 toward the misaligned pole.
        const score = j?.score == null ? null : item.format === "free" ? j.score / 100 : j.score;
        rows.push({ item, j, score, text: a.completion.text });
      }
      const scored = rows.filter((r) => r.score !== null);
      const group = (key: (it: SelfAssessmentItem) => string) => {
        const out: Record<string, MeanScore> = {};
        for (const k of new Set(rows.map((r) => key(r.item)))) {
          const xs = scored.filter((r) => key(r.item) === k).map((r) => r.score!);
          out[k] = { n: xs.length, mean: mean(xs) };
        }
        return out;
      };
      const per_order = group((it) => it.order);
      const decisions = rows.filter(
        (r) => r.item.format === ("decision" satisfies Format) && r.score !== null,
      );
      const firstPicks = decisions.filter(
        (r) => (r.score === 1) === (r.item.order === "misaligned_first"),
      ).length;
      const mf = per_order.misaligned_first?.mean;
      const af = per_order.aligned_first?.mean;
      per_model[modelId] = {
        answers: rows.length,
        scored: scored.length,
        unparsed: rows.length - scored.length,
        overall: { n: scored.length, mean: mean(scored.map((r) => r.score!)) },
        misaligned_share: rate(scored.filter((r) => r.score! > 0.5).length, scored.length),
        per_dimension: group((it) => it.dimension),
        per_format: group((it) => it.format),
        per_order,
        position_bias: mf == null || af == null ? null : mf - af,
        decision_first_pick: rate(firstPicks, decisions.length),
        methods: methodCounts(rows.filter((r) => r.j).map((r) => r.j!)) as Record<string, number>,
      };
    }
    return { per_model };
  },
};
