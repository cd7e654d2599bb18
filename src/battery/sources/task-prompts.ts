import { z } from "zod";
import { fieldName, InputError, type InputProblem } from "../../config/load.ts";
import { parseJsonText } from "../../config/text-file.ts";
import { checkTemplate } from "../../judges/template.ts";
import type { LoadContext } from "../stage.ts";
import { resolveSource } from "./prompts.ts";
import { readSourceFile } from "./read-text.ts";

const TaskPromptsSchema = z
  .object({
    version: z.string(),
    provenance: z.string(),
    two_ai: z.string(),
    recognition: z.string(),
    score_prediction_self: z.string(),
    score_prediction_other: z.string(),
  })
  .strict();
export type TaskPrompts = z.infer<typeof TaskPromptsSchema>;

export type TaskPromptsSource = { file: string } | { builtin: string };

/** emlab's own English questions (src/battery/data/task-prompts.json). */
export const DEFAULT_TASK_PROMPTS: TaskPromptsSource = { builtin: "task-prompts" };

/** Exactly the slots each question fills: the experiments supply these values and no others. */
const TASK_SLOTS: Record<Exclude<keyof TaskPrompts, "version" | "provenance">, readonly string[]> = {
  two_ai: ["a", "b"],
  recognition: ["prompt", "a", "b"],
  score_prediction_self: ["prompt", "response"],
  score_prediction_other: ["prompt", "response"],
};

/**
 * The questions the battery asks the model under test in the two-AI, recognition and score
 * prediction experiments: the built-in English set by default, or a study's own file of the
 * same shape (e.g. in a synthetic world's language). Errors name the file and the question.
 */
export function taskPrompts(
  source: TaskPromptsSource = DEFAULT_TASK_PROMPTS,
  studyFile = "study",
  field = "battery.task_prompts",
): TaskPrompts {
  const { file, shownAs } = resolveSource(source, studyFile, field);
  const json = parseJsonText(readSourceFile(file, shownAs, field), shownAs);
  const r = TaskPromptsSchema.safeParse(json);
  if (!r.success)
    throw new InputError(
      r.error.issues.map((i) => ({
        file: shownAs,
        field: fieldName(i.path) || undefined,
        message: `${i.message} (task prompts are {version, provenance, ${Object.keys(TASK_SLOTS).join(", ")}})`,
      })),
    );
  const problems: InputProblem[] = [];
  for (const [key, slots] of Object.entries(TASK_SLOTS))
    for (const message of checkTemplate(r.data[key as keyof typeof TASK_SLOTS], slots))
      problems.push({ file: shownAs, field: key, message });
  if (problems.length) throw new InputError(problems);
  return r.data;
}

/** The study's task prompts (`battery.task_prompts`, default the built-in set). */
export function studyTaskPrompts(ctx: LoadContext): TaskPrompts {
  return taskPrompts(ctx.study.battery.task_prompts ?? DEFAULT_TASK_PROMPTS, ctx.studyFile);
}
