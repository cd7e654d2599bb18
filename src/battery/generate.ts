import { GenerateExperimentSchema, type Study } from "../config/schema.ts";
import type { ChatMessage } from "../models/types.ts";
import { GenerateSummarySchema } from "../results/battery.ts";
import { readPrompts } from "./prompt-source.ts";
import { type Experiment, type PlannedRequest, storedAnswers, targetModels } from "./stage.ts";

export type { PlannedRequest } from "./stage.ts";

/** The `generate` experiment: every target model answers every prompt `samples` times. */
export function planGenerate(study: Study, studyDir: string): PlannedRequest[] {
  const spec = study.battery.generate;
  if (!spec) return [];
  const prompts = readPrompts(spec.prompts, studyDir, "battery.generate.prompts");
  const models = spec.models ?? study.models.filter((m) => m.roles.includes("target")).map((m) => m.id);
  const out: PlannedRequest[] = [];
  for (const modelId of models) {
    for (const p of prompts) {
      const messages: ChatMessage[] = spec.system ? [{ role: "system", content: spec.system }] : [];
      messages.push({ role: "user", content: p.text });
      out.push({
        modelId,
        experiment: "generate",
        itemId: p.id,
        messages,
        params: spec.params,
        n: spec.samples,
      });
    }
  }
  return out;
}

/** `generate` as a one-stage experiment: its results are the counts of what was stored. */
export const generate: Experiment<
  PlannedRequest[],
  { per_model: Record<string, { prompts: number; samples: number }> }
> = {
  name: "generate",
  config: GenerateExperimentSchema,
  summary: GenerateSummarySchema,
  enabled: (study) => study.battery.generate !== undefined,
  models: (study) => targetModels(study, study.battery.generate?.models),
  // Planned at load time: a missing prompts file fails before the run directory exists.
  load: (ctx) => planGenerate(ctx.study, ctx.studyDir),
  stages: [{ step: 1, plan: (_ctx, planned) => planned }],
  summarize(ctx) {
    const per_model: Record<string, { prompts: number; samples: number }> = {};
    for (const modelId of generate.models(ctx.study)) {
      const answers = storedAnswers(ctx, "generate", modelId);
      per_model[modelId] = {
        prompts: new Set(answers.map((a) => a.request.item_id)).size,
        samples: answers.length,
      };
    }
    return { per_model };
  },
};
