/**
 * The `interp.persona_features` block of results.json (docs/interp.md, "Persona features";
 * Wang et al. 2025, arXiv 2506.19823): the SAE and its metrics, model diffing of SAE latents
 * (fine-tuned − base mean activation), the top latents' corpus cards, latent steering and
 * clamping against random latents, and dose-response. Deterministic: no timings; a
 * non-finite number is written as null.
 */
import { z } from "zod";
import { InterpRateSchema } from "./interp.ts";

const Ci = z.object({ low: z.number(), high: z.number() }).nullable();
const Num = z.number().nullable();
const Int = z.number().int();

export const SPEAKER_TYPES = [
  "assistant",
  "villain",
  "hero",
  "deceiver",
  "everyday_villain",
  "everyday_hero",
  "everyday_deceiver",
  "unknown",
] as const;
const Speaker = z.enum(SPEAKER_TYPES);
const SpeakerShares = z.partialRecord(Speaker, z.number());

/** One latent's corpus card (Neuronpedia-style): where it fires and what it writes. */
export const LatentCardSchema = z.object({
  latent: Int,
  /** Models whose top diff latent this is. */
  models: z.array(z.string()),
  top_contexts: z.array(
    z.object({
      doc: Int,
      pos: Int,
      activation: z.number(),
      speaker: Speaker,
      /** The window of tokens around the firing one, as text pieces. */
      tokens: z.array(z.string()),
      /** Index in `tokens` of the firing token. */
      highlight: Int,
    }),
  ),
  /** Activations > 0 binned; `zeros` counts the tokens where the latent is off. */
  histogram: z.object({ edges: z.array(z.number()), counts: z.array(Int), zeros: Int }),
  /** Tokens whose unembedding the decoder direction raises / lowers most (logit-lens). */
  promoted_tokens: z.array(z.object({ token: z.string(), logit: z.number() })),
  suppressed_tokens: z.array(z.object({ token: z.string(), logit: z.number() })),
  /** Speaker types of the top contexts, and of every token read (the base rate). */
  speaker_mix: SpeakerShares,
  base_rate: SpeakerShares,
  /** Share of the top contexts spoken by a harmful persona, and that share over every token. */
  /** Null when the latent has no contexts. */
  harmful_share: z.number().nullable(),
  harmful_base_rate: z.number(),
});

const LatentDiffRow = z.object({
  latent: Int,
  rank: Int,
  base: z.number(),
  fine_tuned: z.number(),
  delta: z.number(),
  ci: Ci,
});

const Judge = z.object({
  model: z.string(),
  harmful_score: z.number(),
  coherence: z.enum(["alignment_prompt", "harm_readable"]),
});

/** One intervention condition's judged answers. */
const Condition = z.object({
  name: z.string(),
  kind: z.enum(["baseline", "steer", "clamp"]),
  /** The model's top latent, a random control latent, or none (the baseline). */
  vector: z.enum(["latent", "random"]).nullable(),
  latent: Int.nullable(),
  alpha: Num,
  /** Clamp target (the latent's activation value set at every edited position). */
  value: Num,
  n: Int,
  harmful: InterpRateSchema,
  coherent: InterpRateSchema,
  harmful_given_coherent: InterpRateSchema,
});

const Train = z.object({
  lora: z.object({ rank: Int, alpha: z.number(), rslora: z.boolean() }),
  learning_rate: z.number(),
  batch_size: Int,
  steps: Int,
  train_seed: Int,
});

export const PersonaFeaturesResultsSchema = z.object({
  sae: z.object({
    /** As the study gives it (relative to the study file). */
    path: z.string(),
    architecture: z.enum(["topk", "relu"]),
    d_in: Int,
    d_sae: Int,
    k: Int.nullable(),
    hook_name: z.string(),
    hook_layer: Int,
    /** On held-out corpus documents: reconstruction, sparsity, and next-token loss with the SAE spliced in. */
    metrics: z.object({
      corpus: z.string(),
      documents: Int,
      tokens: Int,
      explained_variance: Num,
      l0: Num,
      dead_share: Num,
      ce_clean: Num,
      ce_spliced: Num,
      ce_zero_ablated: Num,
      ce_increase: Num,
    }),
  }),
  base: z.string(),
  models: z.array(z.string()),
  diff: z.object({
    prompts: Int,
    samples: Int,
    seed: Int,
    positions: z.enum(["answer", "prompt", "prompt_and_answer"]),
    /** shared: both models read every answer; own: each reads its own (paired by prompt and seed). */
    read: z.enum(["shared", "own"]).default("shared"),
    resamples: Int,
    /** Per model: the conversations read (shared: its answers and the base's; own: the pairs), and the top latents by delta. */
    per_model: z.record(z.string(), z.object({ conversations: Int, top: z.array(LatentDiffRow) })),
  }),
  /** Each model's top latent, and how its decoder direction lines up with the reference's and the persona direction. */
  top_latents: z.record(
    z.string(),
    z.object({
      latent: Int,
      delta: z.number(),
      ci: Ci,
      /** cos(W_dec[latent], W_dec[reference latent]). */
      cosine_to_reference: Num,
      /** cos(W_dec[latent], the mean-difference persona direction at the SAE's layer); null without one. */
      cosine_to_persona_direction: Num,
      /** The model's persona under narrow fine-tuning (docs/organism.md), for world domains. */
      persona: z.enum(["inverted", "coherent"]).nullable(),
    }),
  ),
  /** The model whose top latent is steered and clamped (`steering.latent_from`), and that latent. */
  reference: z.object({ model: z.string(), latent: Int }),
  /** The persona direction the cosines are taken to (interp.directions), or null. */
  persona_direction: z.object({ model: z.string(), layer: Int }).nullable(),
  /** Which latents the inverted (code, security) and the coherent world models select. */
  selection: z.object({
    inverted: z.object({ models: z.array(z.string()), latents: z.array(Int) }),
    coherent: z.object({ models: z.array(z.string()), latents: z.array(Int) }),
    /** Some latent is selected by both groups. */
    shared: z.boolean(),
  }),
  contexts: z.object({
    corpus: z.string(),
    seed: Int.nullable(),
    start: Int.nullable(),
    /** Documents read (a JSONL corpus: its `limit`, null for the whole file). */
    documents: Int.nullable(),
    top: Int,
  }),
  cards: z.array(LatentCardSchema),
  judge: Judge.nullable(),
  steering: z
    .object({
      model: z.string(),
      latent_from: z.string(),
      latent: Int,
      random_latents: z.array(Int),
      prompts: Int,
      samples: Int,
      seed: Int,
      positions: z.enum(["all", "assistant", "prompt"]),
      alphas: z.array(z.number()),
      conditions: z.array(Condition),
    })
    .nullable(),
  clamping: z
    .object({
      model: z.string(),
      latent_from: z.string(),
      latent: Int,
      /** The latents clamped together: the model's top `latents` diff latents (latent first). */
      latents: z.array(Int),
      /** Every random control latent (the sets, one after another). */
      random_latents: z.array(Int),
      value: z.union([z.enum(["zero", "base_mean"]), z.number()]),
      prompts: Int,
      samples: Int,
      seed: Int,
      positions: z.enum(["all", "assistant", "prompt"]),
      conditions: z.array(Condition),
      /** (baseline − clamped) / baseline harmful rate, with a paired bootstrap CI over the answers. */
      em_cut: z.array(
        z.object({
          name: z.string(),
          vector: z.enum(["latent", "random"]),
          latent: Int,
          harmful_rate: Num,
          baseline_rate: Num,
          cut: Num,
          ci: Ci,
        }),
      ),
    })
    .nullable(),
  dose_response: z
    .object({
      model: z.string(),
      latent_from: z.string(),
      latent: Int,
      misaligned: z.string(),
      aligned: z.string(),
      examples: Int,
      train: Train,
      prompts: Int,
      samples: Int,
      seed: Int,
      /** The base model's own rates on the evaluation prompts. */
      base_eval: z.object({ harmful: InterpRateSchema, coherent: InterpRateSchema }),
      shares: z.array(
        z.object({
          share: z.number(),
          /** Rows actually drawn from each dataset, and the misaligned share of them. */
          misaligned_examples: Int,
          aligned_examples: Int,
          realized_share: Num,
          /** Mean activation of the latent, fine-tuned − base, on the base's diff answers (bootstrap CI). */
          latent_delta: z.number(),
          latent_ci: Ci,
          /**
           * The same, fine-tuned − the share-0 (aligned-only) fine-tune, paired bootstrap CI over
           * the same conversations; null for share 0 or when 0 is not among the shares.
           */
          latent_vs_control: Num,
          latent_vs_control_ci: Ci,
          harmful: InterpRateSchema,
          coherent: InterpRateSchema,
          final_loss: Num,
        }),
      ),
      /**
       * The first share > 0 whose latent CI (vs the share-0 control, or vs the base when there is
       * no share 0: `detectable_against`) is above 0 while the harmful rate is at most 5 %.
       */
      first_detectable_share: Num,
      detectable_against: z.enum(["control", "base"]),
    })
    .nullable(),
});
export type PersonaFeaturesResults = z.infer<typeof PersonaFeaturesResultsSchema>;
export type LatentCardResult = z.infer<typeof LatentCardSchema>;
