import type { Study } from "../config/schema.ts";
import type { ChatMessage, SamplingParams } from "../models/types.ts";
import { readPrompts } from "./prompt-source.ts";

/** A request the study wants made: one prompt to one model, `n` samples. */
export interface PlannedRequest {
  modelId: string;
  experiment: string;
  itemId: string;
  messages: ChatMessage[];
  params: SamplingParams;
  n: number;
}

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
