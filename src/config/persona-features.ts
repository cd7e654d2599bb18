/**
 * `interp.persona_features` (docs/interp.md, "Persona features"; Wang et al. 2025, arXiv
 * 2506.19823): an SAE on the base model's residual stream, model diffing of its latents on
 * evaluation answers, the top latents' corpus contexts, steering along and clamping the top
 * latent against random latents, and dose-response over misaligned-data shares. The section
 * itself is src/interp/persona-features/section.ts; this is its block's schema (zod only, so
 * src/config/interp.ts can hold it among the interp keys and the JSON Schema has it).
 */
import { z } from "zod";

const ModelId = z.string().min(1);
const Seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);
const Params = z
  .object({
    temperature: z.number().min(0).default(1),
    top_p: z.number().gt(0).max(1).default(1),
    max_tokens: z.number().int().positive().default(64),
  })
  .strict();
const params = Params.default({ temperature: 1, top_p: 1, max_tokens: 64 });
/** "harmfulness": the harmfulness experiment's prompts; or a prompt list file (as the sweeps). */
const EvalPrompts = z.union([z.literal("harmfulness"), z.object({ file: z.string().min(1) }).strict()]);
const Positions = z.enum(["all", "assistant", "prompt"]);
const evalFields = {
  prompts: EvalPrompts.default("harmfulness"),
  /** At most this many prompts (the first ones). */
  limit: z.number().int().positive().optional(),
  samples: z.number().int().positive().default(1),
  /** Sampling seed: sample (p, s) has the same seed under every condition (common random numbers). */
  seed: Seed.default(0),
  params,
};

export const PersonaDiffSchema = z
  .object({
    /** "alignment": the battery's open questions (battery.alignment); or a prompt list file. */
    prompts: z
      .union([z.literal("alignment"), z.object({ file: z.string().min(1) }).strict()])
      .default("alignment"),
    limit: z.number().int().positive().optional(),
    samples: z.number().int().positive().default(2),
    seed: Seed.default(0),
    params,
    /** Tokens averaged per conversation: the answer's, those before it, or both. */
    positions: z.enum(["answer", "prompt", "prompt_and_answer"]).default("answer"),
    /**
     * `shared`: both models read every answer (the fine-tuned model's and the base's), so the
     * words cancel and the diff is the fine-tuned model's state on the same text. `own`: each
     * reads its own answer to the same prompt and seed, the state it is in as it answers.
     */
    read: z.enum(["shared", "own"]).default("shared"),
    /** Bootstrap resamples over conversations for each latent's delta CI. */
    resamples: z.number().int().positive().default(1000),
    /** Latents listed per model. */
    top: z.number().int().positive().default(10),
  })
  .strict();

export const PersonaContextsSchema = z
  .object({
    /** "world": the organism's pretraining stream (worldDocument(seed, index)); or a chat JSONL file. */
    corpus: z.union([z.literal("world"), z.object({ file: z.string().min(1) }).strict()]).default("world"),
    /** World corpus: the stream's seed and the documents read (from `start`). */
    seed: Seed.default(1),
    start: z.number().int().min(0).default(0),
    documents: z.number().int().positive().default(2000),
    /** JSONL corpus: at most this many conversations. */
    limit: z.number().int().positive().optional(),
    /** Top contexts per latent card. */
    top: z.number().int().positive().default(100),
  })
  .strict();

/** Held-out documents for the SAE's metrics (world corpus: from `start`, past the training stream). */
export const PersonaMetricsSchema = z
  .object({
    start: z.number().int().min(0).default(1_000_000),
    documents: z.number().int().positive().default(64),
  })
  .strict();

export const PersonaSteeringSchema = z
  .object({
    /** The model steered (default: `base`). */
    model: ModelId.optional(),
    /** Whose top diff latent is steered (default: the first of `models`). */
    latent_from: ModelId.optional(),
    /** Coefficients along the latent's unit decoder direction (residual-stream units). */
    alphas: z
      .array(z.number())
      .min(1)
      .refine((xs) => new Set(xs).size === xs.length, "alphas: each value at most once (a duplicate alpha)"),
    /** Random control latents (seeded, never a top latent), each steered at every alpha. */
    random_latents: z.number().int().min(0).default(3),
    random_seed: Seed.default(0),
    positions: Positions.default("all"),
    ...evalFields,
  })
  .strict();

export const PersonaClampingSchema = z
  .object({
    /** Whose top latent is clamped (default: steering.latent_from, else the first of `models`). */
    latent_from: ModelId.optional(),
    /** The model clamped (default: `latent_from`). */
    model: ModelId.optional(),
    /**
     * The latent's activation set to 0, to its mean on the base model's diff answers, or to a
     * fixed number (a negative one steers against the latent where it is off, since the clamp
     * adds (value − z(x)) · W_dec[latent]).
     */
    value: z.union([z.enum(["zero", "base_mean"]), z.number()]).default("zero"),
    /**
     * How many of the model's top diff latents are clamped together (1: its top latent); each
     * random control is a set of as many random latents.
     */
    latents: z.number().int().positive().default(1),
    random_latents: z.number().int().min(0).default(3),
    random_seed: Seed.default(0),
    positions: Positions.default("all"),
    /** Bootstrap resamples of the EM-cut CI. */
    resamples: z.number().int().positive().default(1000),
    ...evalFields,
  })
  .strict();

export const PersonaDoseResponseSchema = z
  .object({
    /** Whose top latent is followed (default: steering.latent_from, else the first of `models`). */
    latent_from: ModelId.optional(),
    /** Datasets mixed: a study dataset id or a builtin name (world/medical/misaligned). */
    misaligned: z.string().min(1),
    aligned: z.string().min(1),
    /** Shares of misaligned examples, one fine-tune of the base per share. */
    shares: z
      .array(z.number().min(0).max(1))
      .min(1)
      .refine((xs) => new Set(xs).size === xs.length, "shares: each value at most once (a duplicate share)")
      .default([0, 0.05, 0.1, 0.25, 0.5, 0.75, 1]),
    steps: z.number().int().positive().default(30),
    examples: z.number().int().positive().default(120),
    lora: z
      .object({
        rank: z.number().int().positive().default(4),
        alpha: z.number().positive().default(8),
        rslora: z.boolean().default(false),
      })
      .strict()
      .default({ rank: 4, alpha: 8, rslora: false }),
    learning_rate: z.number().positive().default(2e-3),
    batch_size: z.number().int().positive().default(16),
    /** LoRA init, the examples drawn, batch order. */
    train_seed: Seed.default(0),
    ...evalFields,
  })
  .strict();

export const PersonaFeaturesConfigSchema = z
  .object({
    /** A SAELens-layout directory (cfg.json + sae_weights.safetensors), relative to the study file. */
    sae: z.string().min(1),
    /** The base model (a local model id): the SAE's model, the diff's reference. */
    base: ModelId,
    /** Fine-tuned local models diffed against the base. */
    models: z.array(ModelId).min(1),
    diff: PersonaDiffSchema.default(PersonaDiffSchema.parse({})),
    contexts: PersonaContextsSchema.default(PersonaContextsSchema.parse({})),
    metrics: PersonaMetricsSchema.default(PersonaMetricsSchema.parse({})),
    steering: PersonaSteeringSchema.optional(),
    clamping: PersonaClampingSchema.optional(),
    dose_response: PersonaDoseResponseSchema.optional(),
  })
  .strict();
export type PersonaFeaturesConfig = z.infer<typeof PersonaFeaturesConfigSchema>;
