/**
 * The results.json sections of the built-in battery experiments (docs/battery.md): each
 * experiment module (src/battery/<name>.ts) summarizes into its schema here, and the
 * analysis reads them by the same types.
 */
import { z } from "zod";
import { CountsSchema, ErrorStatsSchema, MeanScoreSchema, perModel, RateSchema } from "./common.ts";

export const GenerateSummarySchema = perModel(
  z.object({ prompts: z.number().int(), samples: z.number().int() }),
);
export type GenerateSummary = z.infer<typeof GenerateSummarySchema>;

export const HarmModelSummarySchema = z.object({
  prompts: z.number().int(),
  samples: z.number().int(),
  judged: z.number().int(),
  unparsed: z.number().int(),
  methods: CountsSchema,
  mean_score: z.number().nullable(),
  /** Counts of judged samples by score 1..5. */
  score_histogram: CountsSchema,
  /** Per sample: score >= the harmful threshold, among judged samples. */
  harmful: RateSchema,
  /** Per prompt: the highest judged score of its samples >= the threshold, among prompts with a judged sample. */
  worst_of_n: RateSchema,
});
export type HarmModelSummary = z.infer<typeof HarmModelSummarySchema>;
export const HarmSummarySchema = perModel(HarmModelSummarySchema).extend({ judge_prompt: z.string() });
export type HarmSummary = z.infer<typeof HarmSummarySchema>;

export const AlignmentCountsSchema = z.object({
  answers: z.number().int(),
  /** Answers with both an aligned and a coherent score. */
  scored: z.number().int(),
  /** Coherent among answers with a coherent score. */
  coherent: RateSchema,
  /** Misaligned (aligned below the cut-off) among coherent answers with an aligned score. */
  misaligned: RateSchema,
  mean_aligned: z.number().nullable(),
  mean_coherent: z.number().nullable(),
  /** Judge said CODE / REFUSAL, or nothing readable, per metric. */
  null_scores: z.record(z.string(), CountsSchema),
  methods: CountsSchema,
});
export type AlignmentCounts = z.infer<typeof AlignmentCountsSchema>;
export const AlignmentSummarySchema = perModel(
  AlignmentCountsSchema.extend({ per_question: z.record(z.string(), AlignmentCountsSchema) }),
);
export type AlignmentSummary = z.infer<typeof AlignmentSummarySchema>;

export const SelfModelSummarySchema = z.object({
  answers: z.number().int(),
  scored: z.number().int(),
  unparsed: z.number().int(),
  /** Mean 0-1 misalignment over scored answers. */
  overall: MeanScoreSchema,
  /** Answers scoring above 0.5 (leaning to the misaligned pole). */
  misaligned_share: RateSchema,
  per_dimension: z.record(z.string(), MeanScoreSchema),
  per_format: z.record(z.string(), MeanScoreSchema),
  per_order: z.record(z.string(), MeanScoreSchema),
  /** mean(misaligned pole named first) - mean(aligned pole named first); 0 = no order effect. */
  position_bias: z.number().nullable(),
  /** Decision format: how often the first-named option was picked. */
  decision_first_pick: RateSchema,
  methods: CountsSchema,
});
export type SelfModelSummary = z.infer<typeof SelfModelSummarySchema>;
export const SelfAssessmentSummarySchema = perModel(SelfModelSummarySchema);
export type SelfAssessmentSummary = z.infer<typeof SelfAssessmentSummarySchema>;

export const TwoAiModelSummarySchema = z.object({
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  /** Picked the misaligned description, among readable answers. */
  misaligned_pick: RateSchema,
  /** Keyed misaligned_A / misaligned_B. */
  per_order: z.record(z.string(), RateSchema),
  /** Picked option A, among readable answers (0.5 = no position bias). */
  position_a: RateSchema,
  /** Items answered in both orders whose two answers name the same description. */
  consistent: RateSchema,
});
export type TwoAiModelSummary = z.infer<typeof TwoAiModelSummarySchema>;
export const TwoAiSummarySchema = perModel(TwoAiModelSummarySchema).extend({ source: z.string() });
export type TwoAiSummary = z.infer<typeof TwoAiSummarySchema>;

export const RecognitionModelSummarySchema = z.object({
  /** Whose answers stood beside the model's own. */
  alternative: z.string().nullable(),
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  /** Picked its own output, among readable answers. */
  claim: RateSchema,
  /** Keyed own_A / own_B. */
  per_order: z.record(z.string(), RateSchema),
  /** Picked option A, among readable answers (0.5 = no position bias). */
  position_a: RateSchema,
  /** Own outputs at or above min_score that had no alternative answer to the same prompt. */
  skipped: z.number().int(),
});
export type RecognitionModelSummary = z.infer<typeof RecognitionModelSummarySchema>;
export const RecognitionSummarySchema = perModel(RecognitionModelSummarySchema);
export type RecognitionSummary = z.infer<typeof RecognitionSummarySchema>;

/** Spearman's rho between a model's predicted and the judge's actual scores of its own outputs. */
export const PredictionRankSchema = z.object({
  rho: z.number(),
  /** Two-sided, t distribution with n − 2 df (scipy.stats.spearmanr). */
  p: z.number(),
  /** 95 % Fisher z interval with the Fieller variance 1.06/(n − 3). */
  ci: z.tuple([z.number(), z.number()]),
  n: z.number().int(),
});
export type PredictionRank = z.infer<typeof PredictionRankSchema>;

export const PredictionModelSummarySchema = ErrorStatsSchema.extend({
  items: z.number().int(),
  answers: z.number().int(),
  unparsed: z.number().int(),
  /** Keyed by the judge's actual score. */
  by_actual: z.record(z.string(), ErrorStatsSchema),
  /**
   * Does the model rank its own outputs as the judge does? null with fewer than 4 readable
   * predictions or a constant side (rho undefined); absent in results written before it existed.
   */
  spearman: PredictionRankSchema.nullable().optional(),
});
export type PredictionModelSummary = z.infer<typeof PredictionModelSummarySchema>;
export const ScorePredictionSummarySchema = perModel(PredictionModelSummarySchema);
export type ScorePredictionSummary = z.infer<typeof ScorePredictionSummarySchema>;

export const CrossRatingSummarySchema = z.object({
  raters: z.array(z.string()),
  rated: z.array(z.string()),
  /** matrix[rater][rated]: errors of the rater's predictions of the judge's scores of the rated model's outputs. */
  matrix: z.record(z.string(), z.record(z.string(), ErrorStatsSchema.extend({ unparsed: z.number().int() }))),
});
export type CrossRatingSummary = z.infer<typeof CrossRatingSummarySchema>;

/** The built-in experiments' sections, by results key, in results order. */
export const BUILTIN_SUMMARIES = {
  generate: GenerateSummarySchema,
  harmfulness: HarmSummarySchema,
  alignment: AlignmentSummarySchema,
  self_assessment: SelfAssessmentSummarySchema,
  two_ai: TwoAiSummarySchema,
  recognition: RecognitionSummarySchema,
  score_prediction: ScorePredictionSummarySchema,
  cross_rating: CrossRatingSummarySchema,
} as const;
