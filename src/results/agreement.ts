import { z } from "zod";

/**
 * results.json's `judge_agreement` block (docs/rejudge.md): a run's stored answers judged
 * again by other judges (`emlab rejudge`), each judge's summaries of the judged experiments,
 * and how each agrees with the run's own judge.
 */

const Int = z.number().int().nonnegative();

/** A correlation over the answers both judges scored, with its Fisher z interval. */
export const AgreementCorrelationSchema = z
  .object({
    r: z.number().nullable().describe("null when either judge's scores are constant (r undefined)"),
    ci: z.tuple([z.number(), z.number()]).nullable(),
  })
  .strict();

/** The 2x2 table of a thresholded label: rows the first judge, columns the second. */
export const ConfusionSchema = z
  .object({ both: Int, first_only: Int, second_only: Int, neither: Int })
  .strict();

export const MetricAgreementSchema = z
  .object({
    /** Answers both judges gave a score. */
    pairs: Int,
    only_first_scored: Int,
    only_second_scored: Int,
    neither_scored: Int,
    mean_first: z.number().nullable(),
    mean_second: z.number().nullable(),
    pearson: AgreementCorrelationSchema,
    /** Spearman's rho (average ranks for ties), Fisher z interval with variance 1.06/(n-3). */
    spearman: AgreementCorrelationSchema,
    /** The thresholded label (harmful, misaligned, coherent), when the metric has one. */
    label: z
      .object({
        name: z.string(),
        rule: z.string(),
        /** Cohen's kappa; null when both judges give one label to every answer (kappa undefined). */
        kappa: z.number().nullable(),
        confusion: ConfusionSchema,
        rate_first: z.number().nullable(),
        rate_second: z.number().nullable(),
      })
      .strict()
      .nullable(),
  })
  .strict();
export type MetricAgreement = z.infer<typeof MetricAgreementSchema>;

/** A headline rate by each judge (fractions; null without scored answers). */
export const RateMoveSchema = z
  .object({ first: z.number().nullable(), second: z.number().nullable(), delta: z.number().nullable() })
  .strict();
export type RateMove = z.infer<typeof RateMoveSchema>;

export const ExperimentAgreementSchema = z
  .object({
    metrics: z.record(z.string(), MetricAgreementSchema),
    /** Per target model (and "all"): the experiment's headline rates by each judge. */
    headline: z.record(z.string(), z.record(z.string(), RateMoveSchema)),
  })
  .strict();
export type ExperimentAgreement = z.infer<typeof ExperimentAgreementSchema>;

export const JudgeAgreementSchema = z
  .object({
    first_judge: z.string(),
    second_judge: z.string(),
    ci_method: z.literal("fisher-z"),
    level: z.number().gt(0).lt(1),
    experiments: z.record(z.string(), ExperimentAgreementSchema),
  })
  .strict();
export type JudgeAgreement = z.infer<typeof JudgeAgreementSchema>;

export const RejudgedJudgeSchema = z
  .object({
    /** How the judge was asked: "logprobs" or "text" (a judge without logprobs: the written number). */
    reading: z.enum(["logprobs", "text"]),
    /** The judged experiments' results.json sections as this judge's scores make them. */
    experiments: z.record(z.string(), z.unknown()),
    agreement: JudgeAgreementSchema,
  })
  .strict();
export type RejudgedJudge = z.infer<typeof RejudgedJudgeSchema>;

export const JudgeAgreementResultsSchema = z
  .object({
    /** The run's own judge: results.json's `experiments` are its. */
    primary_judge: z.string(),
    /** Every judge the run was rejudged with, by model id. */
    judges: z.record(z.string(), RejudgedJudgeSchema),
  })
  .strict();
export type JudgeAgreementResults = z.infer<typeof JudgeAgreementResultsSchema>;

/** The file the block is also written to, beside results.json (the report reads either). */
export const JUDGE_AGREEMENT_FILE = "judge-agreement.json";
