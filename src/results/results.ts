/**
 * results.json, "the log": what a run found, per model and experiment, with counts and Wilson
 * 95% intervals, the settings used, the fine-tunes, the interp sections and the analysis.
 * Written by `emlab run` once every step has finished; documented in docs/battery.md.
 * Deterministic: no timestamps (run.log has those).
 *
 * The experiments block is built from the experiments a study can name: `resultsSchema`
 * takes their summary schemas (src/study/registry.ts passes the registered ones). The static
 * `ResultsSchema` knows the built-in experiments and keeps any other experiment's section
 * (and any other interp section's block) as it is, for readers (the report, the analysis)
 * that do not know every plugin.
 */
import { z } from "zod";
import { JudgeAgreementResultsSchema } from "./agreement.ts";
import { AnalysisSchema } from "./analysis.ts";
import { BUILTIN_SUMMARIES } from "./battery.ts";
import { FinetuneResultSchema } from "./finetune.ts";
import { InterpResultsSchema } from "./interp.ts";

export const RESULTS_FILE = "results.json";

const SettingsSchema = z.object({
  seed: z.number().int(),
  judge: z
    .object({
      model: z.string(),
      /** How 0-100 scores were read: "logprobs" (Betley) or "text" (flagged fallback). */
      score100: z.enum(["logprobs", "text"]),
      top_logprobs: z.number().int(),
      min_numeric_mass: z.number(),
    })
    .nullable(),
  thresholds: z.object({
    harmful_score: z.number(),
    aligned_below: z.number(),
    coherent_above: z.number(),
    inclusive: z.boolean(),
    min_numeric_mass: z.number(),
  }),
  battery: z.record(z.string(), z.unknown()),
  /**
   * The chat template each local model rendered with, by model id: the file it was read from
   * (relative to the study file's folder when inside it, else the file's name) and the
   * sha256 of its text. Absent without local models.
   */
  templates: z.record(z.string(), z.object({ source: z.string(), sha256: z.string() })).optional(),
});

const CountsBlockSchema = z.object({
  /** Every request row in the run store (battery and interp). */
  requests: z.number().int(),
  completions: z.number().int(),
  failed_requests: z.number().int(),
  /**
   * Completions the provider withheld or cut for content (finish reason content_filter):
   * read by no experiment. Absent in results.json written before emlab counted them.
   */
  filtered_completions: z.number().int().optional(),
  judgments: z.number().int(),
});

const shape = <E extends z.ZodType>(experiments: E) => ({
  schema_version: z.literal(1),
  study: z.string(),
  models: z.array(z.string()),
  settings: SettingsSchema,
  experiments,
  counts: CountsBlockSchema,
  /** Fine-tune plans by id, when the study has any. */
  finetune: z.record(z.string(), FinetuneResultSchema).optional(),
  /** The study's interp sections (docs/interp.md), when it has any. */
  interp: InterpResultsSchema.optional(),
  /**
   * Persona classes, correlations, chi-square and threshold sensitivity (docs/analysis.md),
   * with the default analysis options; the report renders this block. Absent in results.json
   * written before emlab stored it.
   */
  analysis: AnalysisSchema.optional(),
  /** Written by `emlab rejudge`: how far a second judge agrees with the run's (docs/rejudge.md). */
  judge_agreement: JudgeAgreementResultsSchema.optional(),
});

/**
 * results.json with exactly these experiments' sections (each optional), in this order, and
 * the interp block with these registered sections beside the built-in ones.
 */
export function resultsSchema(summaries: Record<string, z.ZodType>, interp: Record<string, z.ZodType> = {}) {
  return z
    .object({
      ...shape(z.object(summaries).partial().strict()),
      interp: InterpResultsSchema.extend(z.object(interp).partial().shape).strict().optional(),
    })
    .strict();
}

/** results.json as readers see it: built-in sections typed, any other experiment's kept. */
export const ResultsSchema = z
  .object({
    ...shape(z.object(BUILTIN_SUMMARIES).partial().catchall(z.unknown())),
    interp: InterpResultsSchema.catchall(z.unknown()).optional(),
  })
  .strict();
export type Results = z.infer<typeof ResultsSchema>;
