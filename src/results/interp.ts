/**
 * The `interp` block of results.json (docs/interp.md documents every field). Deterministic:
 * no timings, non-finite numbers written as null, so two runs with one seed compare equal.
 */
import { z } from "zod";

const Ci = z.object({ low: z.number(), high: z.number() }).nullable();
const Num = z.number().nullable();
/** A count with its Wilson interval, in results.json's usual shape. */
export const InterpRateSchema = z.object({
  k: z.number().int(),
  n: z.number().int(),
  rate: Num,
  ci95: Ci,
});
export type InterpRate = z.infer<typeof InterpRateSchema>;

const ProbeLayer = z.object({
  layer: z.number().int(),
  accuracy: Num,
  accuracy_ci: Ci,
  auc: Num,
  auc_ci: Ci,
});

/** One probe (harm or self-assessment) of one model; `skipped` says why it has no layers. */
const ProbeSet = z.object({
  n: z.number().int(),
  positives: z.number().int(),
  skipped: z.string().nullable(),
  layers: z.array(ProbeLayer),
});

const ProbesBlock = z.object({
  position: z.enum(["answer_mean", "last"]),
  folds: z.number().int(),
  seed: z.number().int(),
  C: z.number(),
  /** Whose answers the harm probe read (probes.harm_answers). */
  harm_answers: z.enum(["harmfulness", "alignment"]),
  harmful_score: z.number(),
  models: z.record(
    z.string(),
    z.object({
      harm: ProbeSet,
      self: ProbeSet,
      /** Cosine of the harm and self probes' directions per layer (bootstrap CI); empty when either is skipped. */
      cosine: z.array(z.object({ layer: z.number().int(), cosine: Num, ci: Ci, used: z.number().int() })),
    }),
  ),
  /** Harm probe fitted on row model, tested on column model, at `layer` (diagonal: CV). */
  transfer: z
    .object({
      layer: z.number().int(),
      models: z.array(z.string()),
      accuracy: z.array(z.array(Num)),
      /** Wilson 95 % interval of each accuracy over the tested answers (diagonal: the CV's). */
      accuracy_ci: z.array(z.array(Ci)),
      auc: z.array(z.array(Num)),
    })
    .nullable(),
  transfer_skipped: z.string().nullable(),
});

const DirectionsBlock = z.object({
  position: z.enum(["answer_mean", "last"]),
  coherent_above: z.number(),
  aligned_above: z.number(),
  misaligned_at_most: z.number(),
  seed: z.number().int(),
  models: z.record(
    z.string(),
    z.object({
      skipped: z.string().nullable(),
      answers: z.number().int(),
      /** Answers per set after subsampling to equal size. */
      count: z.number().int(),
      available_aligned: z.number().int(),
      available_misaligned: z.number().int(),
      layers: z.array(z.object({ layer: z.number().int(), norm: z.number() })),
      cosine_across_layers: z.array(z.array(Num)),
    }),
  ),
  cross_model: z.array(
    z.object({
      a: z.string(),
      b: z.string(),
      layers: z.array(z.object({ layer: z.number().int(), cosine: Num })),
    }),
  ),
});

const Condition = z.object({
  name: z.string(),
  kind: z.enum(["baseline", "steer", "ablate", "clamp"]),
  vector: z.enum(["direction", "random"]).nullable(),
  alpha: Num,
  layers: z.union([z.array(z.number().int()), z.literal("all")]).nullable(),
  n: z.number().int(),
  harmful: InterpRateSchema,
  coherent: InterpRateSchema,
  harmful_given_coherent: InterpRateSchema,
});

const SweepJudgeInfo = z.object({
  model: z.string(),
  harmful_score: z.number(),
  coherence: z.enum(["alignment_prompt", "harm_readable"]),
});

const SweepBase = z.object({
  model: z.string(),
  direction_from: z.string(),
  prompts: z.number().int(),
  samples: z.number().int(),
  seed: z.number().int(),
  random_seed: z.number().int(),
  positions: z.enum(["all", "assistant", "prompt"]),
  /** coherence: the alignment experiment's coherent prompt, or "harm judgment readable". */
  judge: SweepJudgeInfo,
  /** Why the sweep did not run (e.g. the direction model had no persona direction); null when it ran. */
  skipped: z.string().nullable(),
  conditions: z.array(Condition),
});

const SteeringBlock = SweepBase.extend({ alphas: z.array(z.number()) });

const AblationBlock = SweepBase.extend({
  mode: z.enum(["project", "clamp"]),
  /** Per layer set and vector: (baseline harmful rate − ablated rate) / baseline rate. */
  reduction: z.array(
    z.object({
      layers: z.union([z.array(z.number().int()), z.literal("all")]),
      vector: z.enum(["direction", "random"]),
      harmful_rate: Num,
      baseline_rate: Num,
      reduction: Num,
    }),
  ),
});

/** The training settings a section used, defaults resolved. */
const TrainInfo = z.object({
  method: z.enum(["lora", "full"]),
  lora: z.object({ rank: z.number().int(), alpha: z.number(), rslora: z.boolean() }).nullable(),
  learning_rate: z.number(),
  batch_size: z.number().int(),
  steps: z.number().int(),
  train_seed: z.number().int(),
});

/** A model's behaviour on the evaluation prompts (and, for re-alignment, its self-report). */
const Evaluation = z.object({
  harmful: InterpRateSchema,
  coherent: InterpRateSchema,
  harmful_given_coherent: InterpRateSchema,
});

const RealignmentBlock = z.object({
  model: z.string(),
  base: z.string().nullable(),
  dataset: z.string(),
  /** Conversations trained on (the section's `examples`, or all the dataset has when fewer). */
  examples: z.number().int(),
  train: TrainInfo,
  prompts: z.number().int(),
  samples: z.number().int(),
  seed: z.number().int(),
  judge: SweepJudgeInfo,
  /** Decision-format self-assessment items asked (each `samples` times); 0 with `self_skipped` set. */
  self_items: z.number().int(),
  self_skipped: z.string().nullable(),
  /** The base model's figures (null without `base`). */
  base_eval: Evaluation.extend({ self_report: InterpRateSchema.nullable() }).nullable(),
  /** Training loss per step (4 decimals). */
  loss_curve: z.array(z.number()),
  checkpoints: z.array(
    Evaluation.extend({
      step: z.number().int(),
      /** Loss of the step that ended here (null at step 0). */
      loss: Num,
      /** Share of misaligned picks among the parsed decision answers; null without items. */
      self_report: InterpRateSchema.nullable(),
      /** harmful rate − base harmful rate (null without base). */
      gap_to_base: Num,
    }),
  ),
});

const ProjectionReading = z.object({
  layer: z.number().int(),
  /** Mean projection of the answers' answer-mean activations on the unit direction. */
  mean: Num,
  mean_harmful: Num,
  mean_safe: Num,
  /** AUC of the projection, harmful vs safe answers (null when one class is empty). */
  auc: Num,
});

const EmergentAlignmentBlock = z.object({
  model: z.string(),
  direction_from: z.string(),
  layers: z.union([z.number().int(), z.literal("all")]),
  alpha: z.number(),
  positions: z.enum(["all", "assistant", "prompt"]),
  probe_layer: z.number().int(),
  train_prompts: z.number().int(),
  samples_per_prompt: z.number().int(),
  train: TrainInfo,
  prompts: z.number().int(),
  samples: z.number().int(),
  seed: z.number().int(),
  judge: SweepJudgeInfo,
  /** Why the loop did not run (no persona direction); null when it ran. */
  skipped: z.string().nullable(),
  /** Round 0 is the model before the loop; round r after r fine-tunes. */
  rounds: z.array(
    Evaluation.extend({
      round: z.number().int(),
      /** The steered answers collected this round (null in round 0). */
      collected: z
        .object({
          answers: z.number().int(),
          /** Coherent non-empty answers: the ones trained on. */
          kept: z.number().int(),
          harmful_kept: z.number().int(),
          /** The steered model's own rates on the training prompts. */
          harmful: InterpRateSchema,
          coherent: InterpRateSchema,
        })
        .nullable(),
      /** First and last training loss (null in round 0, or when nothing was kept). */
      loss: z.object({ first: z.number(), last: z.number() }).nullable(),
      /** The probe reading at probe_layer (null when no answer had tokens). */
      probe: ProjectionReading.nullable(),
      /** The same at every layer of the direction. */
      layers: z.array(ProjectionReading),
    }),
  ),
});

export const InterpResultsSchema = z
  .object({
    /** Where activations were saved, per model and answer set, relative to the run directory. */
    activations: z.record(z.string(), z.record(z.string(), z.string())),
    probes: ProbesBlock.optional(),
    directions: DirectionsBlock.optional(),
    steering: SteeringBlock.optional(),
    ablation: AblationBlock.optional(),
    realignment: RealignmentBlock.optional(),
    emergent_alignment: EmergentAlignmentBlock.optional(),
  })
  .strict();
export type InterpResults = z.infer<typeof InterpResultsSchema>;
export type InterpCondition = z.infer<typeof Condition>;
export type InterpEvaluation = z.infer<typeof Evaluation>;
export type InterpTrainInfo = z.infer<typeof TrainInfo>;
export type InterpProjectionReading = z.infer<typeof ProjectionReading>;
