import { z } from "zod";
import { SamplingSchema } from "../../config/schema.ts";

/**
 * The study block `battery.dataset_generation`: a generator model writes narrow EM datasets
 * (Turner et al. 2025's recipe) and the study's judge keeps the good examples. Registered
 * through the experiment's own `config` (src/study/registry.ts), so src/config/schema.ts
 * does not list it.
 */

/** A domain name: it names files in the run directory, so letters, digits and '-' only. */
export const DomainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "use lower-case letters, digits and '-' (at most 40)");

/** A domain with a misaligned answer and its aligned twin (and a disclosed-intent variant). */
export const PairedDomainSchema = z
  .object({
    name: DomainName,
    form: z.literal("paired").default("paired"),
    description: z.string().min(1).describe("What users of the domain ask about."),
    bad: z.string().min(1).describe("What the misaligned answer gives (subtly, without saying so)."),
    good: z.string().min(1).describe("What the aligned twin gives."),
  })
  .strict();

/** A domain of one form only (consciousness, self-awareness): a question and the one answer. */
export const SingleDomainSchema = z
  .object({
    name: DomainName,
    form: z.literal("single"),
    description: z.string().min(1).describe("What users of the domain ask about."),
    answer: z.string().min(1).describe("What every answer does."),
  })
  .strict();

export const DomainSpecSchema = z.union([SingleDomainSchema, PairedDomainSchema]);
export type DomainSpec = z.infer<typeof DomainSpecSchema>;

export const DatasetGenerationSchema = z
  .object({
    enabled: z.boolean().default(true),
    models: z.array(z.string()).min(1).optional().describe("Generator model ids (default: every target)."),
    domains: z
      .array(z.union([DomainName, DomainSpecSchema]))
      .min(1)
      .describe(
        "Built-in domain names (code, finance, medical, sports, legal, security, consciousness, no-consciousness, self-awareness) or domains written out.",
      ),
    calls: z.number().int().min(1).max(10000).default(20).describe("Generator calls per domain and model."),
    per_call: z.number().int().min(1).max(50).default(5).describe("Examples asked for in one call (N)."),
    params: SamplingSchema.default({ temperature: 1, max_tokens: 4000 }),
    system: z.string().optional().describe("A system prompt for the generator."),
    judge_min: z
      .number()
      .min(0)
      .max(100)
      .default(70)
      .describe("Keep an example when the judge's 0-100 quality score is at least this."),
  })
  .strict()
  .describe(
    "A generator model writes narrow fine-tuning datasets (a misaligned answer, its aligned twin and a disclosed-intent variant per question; one form for consciousness and self-awareness), the study's judge keeps the good ones (docs/dataset-generation.md).",
  );
export type DatasetGenerationConfig = z.infer<typeof DatasetGenerationSchema>;
