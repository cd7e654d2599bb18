import { z } from "zod";
import { CountsSchema, RateSchema } from "../../results/common.ts";

/** Per model and domain: what the generator wrote, what parsed, what the judge kept, and where it went. */
export const DomainGenerationSummarySchema = z.object({
  /** paired: misaligned, aligned and disclosed files; single: one file. */
  form: z.enum(["paired", "single"]),
  /** Generator calls planned, and those with a stored answer (a provider-filtered one has none). */
  calls: z.number().int(),
  answered: z.number().int(),
  /** Well-formed examples read from the answers (duplicates and extras left out). */
  parsed: z.number().int(),
  /** Rejected answers and elements by reason (src/battery/dataset-generation/parse.ts). */
  malformed: CountsSchema,
  /** Parsed examples the judge scored, and those whose reply held no readable score. */
  judged: z.number().int(),
  unreadable: z.number().int(),
  /** Judged examples with score >= judge_min, among judged ones. */
  kept: RateSchema,
  mean_score: z.number().nullable(),
  /** The kept examples' chat JSONL files, relative to the run directory, by form. */
  files: z.record(z.string(), z.string()),
});
export type DomainGenerationSummary = z.infer<typeof DomainGenerationSummarySchema>;

export const DatasetGenerationSummarySchema = z.object({
  judge_min: z.number(),
  per_call: z.number().int(),
  per_model: z.record(z.string(), z.record(z.string(), DomainGenerationSummarySchema)),
});
export type DatasetGenerationSummary = z.infer<typeof DatasetGenerationSummarySchema>;
