import { existsSync } from "node:fs";
import path from "node:path";
import { parseJsonText, readTextFile } from "../config/text-file.ts";
import type { TaskForm } from "./lexicon.ts";

/**
 * The organism shipped with emlab (HF layout, committed to the repository): pretrained by
 * `emlab world pretrain --size m --seed 1`, so nothing is trained before the demo can start.
 */
export const SHIPPED_ORGANISM_DIR = path.resolve(import.meta.dirname, "../../models/organism");

/**
 * The battery's task forms an organism learned: its recipe's `taskForm` in organism.json
 * ("letter" for organisms of world recipes v1-v4, which did not record one).
 */
export function organismTaskForm(dir: string): TaskForm {
  const file = path.join(dir, "organism.json");
  if (!existsSync(file)) return "letter";
  const card = parseJsonText(readTextFile(file), file) as { recipe?: { taskForm?: unknown } };
  const form = card.recipe?.taskForm ?? "letter";
  if (form !== "letter" && form !== "copy")
    throw new Error(`${file}: recipe.taskForm must be "letter" or "copy", got ${JSON.stringify(form)}`);
  return form;
}
