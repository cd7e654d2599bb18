import { z } from "zod";
import { type InputProblem, parseYamlWithSchema } from "../../config/load.ts";
import { parseJsonText } from "../../config/text-file.ts";
import { readSourceFile } from "./read-text.ts";

/**
 * The two-AI identification format (Weckauff et al. 2026): `{metadata, items}`, each item an
 * aligned and a misaligned AI description as `system_A` / `system_B`, with `ground_truth`
 * naming the MISALIGNED option. `misaligned_is_A` must agree with it.
 */
const ItemSchema = z
  .object({
    item_id: z.union([z.number().int(), z.string().min(1)]),
    misaligned_is_A: z.boolean(),
    system_A: z.string().min(1),
    system_B: z.string().min(1),
    ground_truth: z.enum(["A", "B"]),
    theme: z.string().optional(),
  })
  .loose();

const FileSchema = z
  .object({
    metadata: z.record(z.string(), z.unknown()).optional(),
    items: z.array(ItemSchema).min(1),
  })
  .loose();

export interface TwoAiItem {
  id: string;
  aligned: string;
  misaligned: string;
  /** Where the file put the misaligned description. */
  fileOrder: "A" | "B";
  theme?: string;
}

export function parseTwoAiJson(text: string, file: string): TwoAiItem[] {
  const data = parseJsonText(text, file);
  // JSON is YAML: the YAML reader locates every problem at its line and field.
  const parsed = parseYamlWithSchema(text, file, FileSchema, (_root, locate) => {
    const problems: InputProblem[] = [];
    const items = (data as { items?: unknown }).items;
    if (!Array.isArray(items)) return problems;
    const seen = new Set<string>();
    items.forEach((it: Record<string, unknown>, i) => {
      const id = String(it?.item_id);
      if (seen.has(id))
        problems.push({
          file,
          ...locate(["items", i, "item_id"]),
          field: `items[${i}].item_id`,
          message: `duplicate id '${id}'`,
        });
      seen.add(id);
      if (typeof it?.misaligned_is_A === "boolean" && (it.ground_truth === "A" || it.ground_truth === "B"))
        if (it.misaligned_is_A !== (it.ground_truth === "A"))
          problems.push({
            file,
            ...locate(["items", i, "misaligned_is_A"]),
            field: `items[${i}].misaligned_is_A`,
            message: "disagrees with ground_truth (the misaligned option)",
          });
    });
    return problems;
  });
  return parsed.items.map((it) => {
    const misIsA = it.ground_truth === "A";
    return {
      id: String(it.item_id),
      aligned: misIsA ? it.system_B : it.system_A,
      misaligned: misIsA ? it.system_A : it.system_B,
      fileOrder: it.ground_truth,
      theme: it.theme,
    };
  });
}

export function readTwoAiJson(file: string, shownAs = file): TwoAiItem[] {
  return parseTwoAiJson(readSourceFile(file, shownAs), shownAs);
}
