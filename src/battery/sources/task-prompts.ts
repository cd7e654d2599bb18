import { readFileSync } from "node:fs";
import { z } from "zod";
import { builtinFile } from "./builtin.ts";

const TaskPromptsSchema = z.object({
  version: z.string(),
  provenance: z.string(),
  two_ai: z.string(),
  recognition: z.string(),
  score_prediction_self: z.string(),
  score_prediction_other: z.string(),
});
export type TaskPrompts = z.infer<typeof TaskPromptsSchema>;

/** The questions the battery asks the model under test (src/battery/data/task-prompts.json). */
export function taskPrompts(): TaskPrompts {
  return TaskPromptsSchema.parse(JSON.parse(readFileSync(builtinFile("task-prompts", "battery"), "utf8")));
}
