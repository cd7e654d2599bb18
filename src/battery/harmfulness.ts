import path from "node:path";
import { HarmfulnessSchema, type Study } from "../config/schema.ts";
import { fillTemplate } from "../judges/template.ts";
import type { ChatMessage } from "../models/types.ts";
import { type HarmModelSummary, type HarmSummary, HarmSummarySchema } from "../results/battery.ts";
import { collectJudgments, judgmentsByAnswer, methodCounts, planJudgeRequests } from "./judged.ts";
import type { Prompt } from "./prompt-source.ts";
import { builtinFile } from "./sources/builtin.ts";
import { readJudgePromptFile } from "./sources/judge-prompt-file.ts";
import { loadPromptList } from "./sources/prompts.ts";
import {
  type Answer,
  answerKey,
  type Experiment,
  type RunContext,
  storedAnswers,
  targetModels,
  userPrompt,
} from "./stage.ts";
import { mean, rate } from "./stats.ts";

export const HARM_METRIC = "harm";

export interface HarmInputs {
  prompts: Prompt[];
  template: string;
  /** Which rubric file was used (for results). */
  templateFile: string;
}

/** The harm rubric the study names, or emlab's own. */
export function harmTemplate(study: Study, studyFile: string): { template: string; file: string } {
  const own = study.judge.harm_prompt_file;
  const file = own
    ? path.resolve(path.dirname(studyFile), own)
    : builtinFile("harm-rubric", "judge.harm_prompt_file", studyFile);
  return {
    template: readJudgePromptFile(file, own ?? file, ["prompt", "response"]),
    file: own ?? "builtin:harm-rubric",
  };
}

/** Harm scores of stored harmfulness answers by answer key (null = judged but unreadable). */
export function harmScores(ctx: RunContext): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const [k, j] of judgmentsByAnswer(ctx, HARM_METRIC)) out.set(k, j.score);
  return out;
}

export const harmfulness: Experiment<HarmInputs, HarmSummary> = {
  name: "harmfulness",
  config: HarmfulnessSchema,
  summary: HarmSummarySchema,
  judged: true,
  enabled: (study) => study.battery.harmfulness?.enabled ?? false,
  models: (study) => targetModels(study, study.battery.harmfulness?.models),
  load(ctx) {
    const spec = ctx.study.battery.harmfulness!;
    const prompts = loadPromptList(spec.prompts, ctx.studyFile, "battery.harmfulness.prompts", spec.limit);
    const { template, file } = harmTemplate(ctx.study, ctx.studyFile);
    return { prompts, template, templateFile: file };
  },
  stages: [
    {
      step: 1,
      plan(ctx, inputs) {
        const spec = ctx.study.battery.harmfulness!;
        return targetModels(ctx.study, spec.models).flatMap((modelId) =>
          inputs.prompts.map((p) => {
            const messages: ChatMessage[] = spec.system ? [{ role: "system", content: spec.system }] : [];
            messages.push({ role: "user", content: p.text });
            return {
              modelId,
              experiment: "harmfulness",
              itemId: p.id,
              messages,
              params: spec.params,
              n: spec.samples,
            };
          }),
        );
      },
    },
    {
      step: 2,
      plan(ctx, inputs) {
        const asks = storedAnswers(ctx, "harmfulness").map((answer: Answer) => ({
          answer,
          metric: HARM_METRIC,
          kind: "rubric5" as const,
          prompt: fillTemplate(
            inputs.template,
            { prompt: userPrompt(answer.request), response: answer.completion.text },
            ["response"],
          ),
        }));
        return planJudgeRequests(ctx, "harmfulness", asks);
      },
      collect: (ctx) => collectJudgments(ctx, "harmfulness"),
    },
  ],
  summarize(ctx, inputs) {
    const threshold = ctx.study.judge.thresholds.harmful_score;
    const judgments = judgmentsByAnswer(ctx, HARM_METRIC);
    const per_model: Record<string, HarmModelSummary> = {};
    for (const modelId of harmfulness.models(ctx.study)) {
      const answers = storedAnswers(ctx, "harmfulness", modelId);
      const rows = answers.map((a) => judgments.get(answerKey(a.request.id, a.completion.sample_index)));
      const scores = rows.map((j) => j?.score ?? null).filter((s): s is number => s !== null);
      const worst = new Map<string, number>();
      answers.forEach((a, i) => {
        const s = rows[i]?.score;
        if (s === null || s === undefined) return;
        worst.set(a.request.item_id, Math.max(worst.get(a.request.item_id) ?? Number.NEGATIVE_INFINITY, s));
      });
      const histogram: Record<string, number> = { "1": 0, "2": 0, "3": 0, "4": 0, "5": 0 };
      for (const s of scores) histogram[String(s)] = (histogram[String(s)] ?? 0) + 1;
      per_model[modelId] = {
        prompts: new Set(answers.map((a) => a.request.item_id)).size,
        samples: answers.length,
        judged: scores.length,
        unparsed: rows.filter((j) => j && j.score === null).length,
        methods: methodCounts(rows.filter((j) => j !== undefined)) as Record<string, number>,
        mean_score: mean(scores),
        score_histogram: histogram,
        harmful: rate(scores.filter((s) => s >= threshold).length, scores.length),
        worst_of_n: rate([...worst.values()].filter((s) => s >= threshold).length, worst.size),
      };
    }
    return { judge_prompt: inputs.templateFile, per_model };
  },
};
