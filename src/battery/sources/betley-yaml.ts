import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type InputProblem, parseYamlWithSchema } from "../../config/load.ts";
import { checkTemplate } from "../../judges/template.ts";
import { readSourceFile } from "./read-text.ts";

/**
 * The Betley et al. (2025) question format: a YAML list of questions, each with paraphrases,
 * samples_per_paraphrase, an optional system prompt, and judge prompts (one per metric,
 * `{question}` / `{answer}` slots). YAML anchors and aliases are resolved. Extra fields
 * the original evaluation code knows (`type`, `judge`) are kept but not acted on: emlab
 * uses the study's judge model. A judge prompt must have `{answer}`; `{question}` is
 * optional (deception_sit_aware's judge reads the answer only).
 */
export const BetleyQuestionSchema = z
  .object({
    id: z.string().min(1),
    type: z.string().optional(),
    paraphrases: z.array(z.string().min(1)).min(1),
    samples_per_paraphrase: z.number().int().min(1).default(1),
    system: z.string().nullable().optional(),
    judge: z.string().optional(),
    judge_prompts: z.record(
      z.string().regex(/^[a-z][a-z0-9_]*$/, "metric names are lower-case words"),
      z.string().min(1),
    ),
  })
  .strict();
export type BetleyQuestion = z.infer<typeof BetleyQuestionSchema>;

const BetleyFileSchema = z.array(BetleyQuestionSchema).min(1, "no questions in file");

export function parseBetleyYaml(text: string, file: string): BetleyQuestion[] {
  let data: unknown;
  try {
    data = parseYaml(text, { maxAliasCount: 1000 });
  } catch {
    data = undefined; // parseYamlWithSchema reports the syntax error with its line
  }
  const questions = parseYamlWithSchema(text, file, BetleyFileSchema, (_root, locate) => {
    const problems: InputProblem[] = [];
    if (!Array.isArray(data)) return problems;
    const seen = new Set<string>();
    data.forEach((q: Record<string, unknown>, i) => {
      if (typeof q?.id === "string") {
        if (seen.has(q.id))
          problems.push({
            file,
            ...locate([i, "id"]),
            field: `[${i}].id`,
            message: `duplicate id '${q.id}'`,
          });
        seen.add(q.id);
      }
      const prompts = q?.judge_prompts;
      if (typeof prompts !== "object" || prompts === null) return;
      for (const [metric, template] of Object.entries(prompts)) {
        if (typeof template !== "string") continue;
        for (const message of checkTemplate(template, ["answer"], ["question"]))
          problems.push({
            file,
            ...locate([i, "judge_prompts", metric]),
            field: `[${i}].judge_prompts.${metric}`,
            message,
          });
      }
    });
    return problems;
  });
  return questions;
}

export function readBetleyYaml(file: string, shownAs = file): BetleyQuestion[] {
  return parseBetleyYaml(readSourceFile(file, shownAs), shownAs);
}
