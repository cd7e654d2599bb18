import { z } from "zod";

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
