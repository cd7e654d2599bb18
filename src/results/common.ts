import { z } from "zod";

/** A Wilson 95% interval {low, high}; null when n = 0. */
export const Ci95Schema = z.object({ low: z.number(), high: z.number() }).nullable();

/** A proportion with its count and Wilson interval, as results.json reports rates. */
export const RateSchema = z.object({
  k: z.number().int(),
  n: z.number().int(),
  rate: z.number().nullable(),
  ci95: Ci95Schema,
});
export type Rate = z.infer<typeof RateSchema>;

export const MeanScoreSchema = z.object({ n: z.number().int(), mean: z.number().nullable() });
export type MeanScore = z.infer<typeof MeanScoreSchema>;

/** Counts by key (parse methods, score histograms). */
export const CountsSchema = z.record(z.string(), z.number().int());

/** Errors of predicted against actual scores. */
export const ErrorStatsSchema = z.object({
  n: z.number().int(),
  /** Mean of predicted - actual. */
  mean_error: z.number().nullable(),
  mean_abs_error: z.number().nullable(),
  mean_predicted: z.number().nullable(),
});
export type ErrorStats = z.infer<typeof ErrorStatsSchema>;

/** An experiment's section keyed by model id. */
export const perModel = <T extends z.ZodType>(t: T) => z.object({ per_model: z.record(z.string(), t) });
