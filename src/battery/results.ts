import { z } from "zod";
import { InterpResultsSchema } from "../interp/study-results.ts";

/**
 * results.json: what a run found, per model and experiment, with counts and Wilson 95%
 * intervals, plus the settings used. Written by `emlab run` once every stage has finished;
 * documented in docs/battery.md. Deterministic: no timestamps (run.log has those).
 */

const Ci = z.object({ low: z.number(), high: z.number() }).nullable();
export const RateSchema = z.object({
  k: z.number().int(),
  n: z.number().int(),
  rate: z.number().nullable(),
  ci95: Ci,
});
const MeanScore = z.object({ n: z.number().int(), mean: z.number().nullable() });
const Counts = z.record(z.string(), z.number().int());
const ErrorStats = z.object({
  n: z.number().int(),
  mean_error: z.number().nullable(),
  mean_abs_error: z.number().nullable(),
  mean_predicted: z.number().nullable(),
});

const HarmModel = z.object({
  prompts: z.number().int(),
  samples: z.number().int(),
  judged: z.number().int(),
  unparsed: z.number().int(),
  methods: Counts,
  mean_score: z.number().nullable(),
  score_histogram: Counts,
  harmful: RateSchema,
  worst_of_n: RateSchema,
});

const AlignmentCounts = z.object({
  answers: z.number().int(),
  scored: z.number().int(),
  coherent: RateSchema,
  misaligned: RateSchema,
  mean_aligned: z.number().nullable(),
  mean_coherent: z.number().nullable(),
  null_scores: z.record(z.string(), Counts),
  methods: Counts,
});

const SelfModel = z.object({
  answers: z.number().int(),
  scored: z.number().int(),
  unparsed: z.number().int(),
  overall: MeanScore,
  misaligned_share: RateSchema,
  per_dimension: z.record(z.string(), MeanScore),
  per_format: z.record(z.string(), MeanScore),
  per_order: z.record(z.string(), MeanScore),
  position_bias: z.number().nullable(),
  decision_first_pick: RateSchema,
  methods: Counts,
});

const TwoAiModel = z.object({
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  misaligned_pick: RateSchema,
  per_order: z.record(z.string(), RateSchema),
  position_a: RateSchema,
  consistent: RateSchema,
});

const RecognitionModel = z.object({
  alternative: z.string().nullable(),
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  claim: RateSchema,
  per_order: z.record(z.string(), RateSchema),
  position_a: RateSchema,
  skipped: z.number().int(),
});

const PredictionModel = ErrorStats.extend({
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  by_actual: z.record(z.string(), ErrorStats),
});

/** One fine-tune plan as trained (by `emlab run`, before the battery): no timings, so runs compare. */
export const FinetuneResultSchema = z.object({
  base: z.string(),
  method: z.enum(["lora", "full"]),
  steps: z.number().int(),
  /** Conversations in the plan's datasets (each stage's). */
  examples: z.number().int(),
  /** Target (assistant) tokens trained on, over every step. */
  tokens: z.number().int(),
  first_loss: z.number(),
  last_loss: z.number(),
  /** Every step's training loss, rounded to 1e-4. */
  loss_curve: z.array(z.number()),
  stages: z.array(
    z.object({
      dataset: z.string(),
      steps: z.number().int(),
      examples: z.number().int(),
      tokens: z.number().int(),
    }),
  ),
});
export type FinetuneResult = z.infer<typeof FinetuneResultSchema>;

const perModel = <T extends z.ZodType>(t: T) => z.object({ per_model: z.record(z.string(), t) });

export const ResultsSchema = z
  .object({
    schema_version: z.literal(1),
    study: z.string(),
    models: z.array(z.string()),
    settings: z.object({
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
    }),
    experiments: z.object({
      generate: perModel(z.object({ prompts: z.number().int(), samples: z.number().int() })).optional(),
      harmfulness: perModel(HarmModel).extend({ judge_prompt: z.string() }).optional(),
      alignment: perModel(
        AlignmentCounts.extend({ per_question: z.record(z.string(), AlignmentCounts) }),
      ).optional(),
      self_assessment: perModel(SelfModel).optional(),
      two_ai: perModel(TwoAiModel).extend({ source: z.string() }).optional(),
      recognition: perModel(RecognitionModel).optional(),
      score_prediction: perModel(PredictionModel).optional(),
      cross_rating: z
        .object({
          raters: z.array(z.string()),
          rated: z.array(z.string()),
          matrix: z.record(
            z.string(),
            z.record(z.string(), ErrorStats.extend({ unparsed: z.number().int() })),
          ),
        })
        .optional(),
    }),
    counts: z.object({
      requests: z.number().int(),
      completions: z.number().int(),
      failed_requests: z.number().int(),
      /**
       * Completions the provider withheld or cut for content (finish reason content_filter):
       * read by no experiment. Absent in results.json written before emlab counted them.
       */
      filtered_completions: z.number().int().optional(),
      judgments: z.number().int(),
    }),
    /** Fine-tune plans by id, when the study has any. */
    finetune: z.record(z.string(), FinetuneResultSchema).optional(),
    /** The study's interp sections (docs/interp.md), when it has any. */
    interp: InterpResultsSchema.optional(),
  })
  .strict();
export type Results = z.infer<typeof ResultsSchema>;

export const RESULTS_FILE = "results.json";
