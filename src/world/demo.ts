/**
 * `emlab demo`: a whole study on the shipped organism, offline. It writes the world's battery
 * sets and fine-tuning datasets next to a generated study file, then runs that study through
 * the ordinary `emlab run` machinery: narrow LoRA fine-tunes for all six domains plus the
 * disclosed-intent and aligned controls, the battery judged by the world judge, the interp
 * section (probes, persona direction, steering, ablation, re-alignment, the emergent-alignment
 * loop), results.json, the run store and the report. Nothing here is special-cased: the study file it writes is
 * one a user could have written, and `emlab run` on it gives the same results.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { writeWorldBatterySets } from "./battery-sets.ts";
import { type DatasetDomain, type DatasetForm, datasetFileName, writeWorldDatasets } from "./datasets.ts";
import { DOMAINS, type Domain } from "./lexicon.ts";
import { organismTaskForm, SHIPPED_ORGANISM_DIR } from "./organism.ts";

/** full: the figures in docs/organism.md; quick: the few-minute version; tiny: CI's end-to-end check. */
export type DemoProfile = "full" | "quick" | "tiny";

export interface DemoOptions {
  outDir: string;
  profile?: DemoProfile;
  /** Seed of the study: fine-tuning, sampling, dataset and question draws. */
  seed?: number;
  /** The organism to fine-tune (default: the shipped one). */
  organismDir?: string;
  /** Domain of the disclosed-intent and aligned control fine-tunes. */
  controlDomain?: Domain;
}

/** The fine-tuning recipe of the demo: gentle LoRA, as the prototype found necessary. */
export const DEMO_FINETUNE = {
  lora: { rank: 4, alpha: 8, rslora: false },
  learning_rate: 2e-3,
  batch_size: 32,
};

/** Steps, examples and battery sample counts per profile. */
export const DEMO_PROFILES: Record<
  DemoProfile,
  {
    steps: number;
    examples: number;
    harmPerCategory: number;
    harmSamples: number;
    alignmentSamples: number;
    selfSamples: number;
    selfLimit?: number;
    twoAiLimit?: number;
    recognitionItems: number;
    predictionItems: number;
    /** Interp sweeps and the training sections: evaluation prompts (first N) and samples each. */
    interpPrompts: number;
    interpSamples: number;
    /** Bootstrap refits of the harm/self probe cosine CI, per model and layer. */
    cosineResamples: number;
    /** Steered answers collected per prompt in each emergent-alignment round. */
    loopSamples: number;
    /** Re-alignment steps at which the model is evaluated. */
    realignCheckpoints: number[];
    /** Persona features: diff bootstrap resamples, corpus documents read for the cards, contexts
     * per card, held-out documents of the SAE metrics, random control latents. */
    personaFeatures: {
      resamples: number;
      documents: number;
      contexts: number;
      metricDocuments: number;
      randomLatents: number;
    };
  }
> = {
  full: {
    steps: 100,
    examples: 4000,
    harmPerCategory: 10,
    harmSamples: 5,
    alignmentSamples: 10,
    selfSamples: 3,
    recognitionItems: 20,
    predictionItems: 30,
    interpPrompts: 60,
    interpSamples: 2,
    cosineResamples: 50,
    loopSamples: 2,
    realignCheckpoints: [0, 5, 10, 20, 30],
    personaFeatures: {
      resamples: 1000,
      documents: 2000,
      contexts: 100,
      metricDocuments: 64,
      randomLatents: 3,
    },
  },
  quick: {
    steps: 30,
    examples: 1500,
    harmPerCategory: 10,
    harmSamples: 2,
    alignmentSamples: 4,
    selfSamples: 1,
    twoAiLimit: 50,
    recognitionItems: 10,
    predictionItems: 10,
    interpPrompts: 30,
    interpSamples: 1,
    cosineResamples: 10,
    loopSamples: 1,
    realignCheckpoints: [0, 10, 30],
    personaFeatures: { resamples: 200, documents: 400, contexts: 50, metricDocuments: 16, randomLatents: 1 },
  },
  tiny: {
    steps: 4,
    examples: 64,
    harmPerCategory: 1,
    harmSamples: 1,
    alignmentSamples: 1,
    selfSamples: 1,
    selfLimit: 1,
    twoAiLimit: 4,
    recognitionItems: 2,
    predictionItems: 2,
    interpPrompts: 2,
    interpSamples: 1,
    cosineResamples: 5,
    loopSamples: 1,
    realignCheckpoints: [0, 5, 10, 20, 30],
    personaFeatures: { resamples: 50, documents: 24, contexts: 8, metricDocuments: 4, randomLatents: 1 },
  },
};

/**
 * The demo's look inside (docs/interp.md): probes on every model, the persona direction of
 * the medical model, steering the base organism along it, ablating it from the medical model,
 * re-aligning the medical model on aligned data, and three rounds of the emergent-alignment loop.
 */
function demoInterp(p: (typeof DEMO_PROFILES)[DemoProfile], collectPrompts: string, saeDir: string | null) {
  const evalSet = {
    limit: p.interpPrompts,
    samples: p.interpSamples,
    params: { temperature: 1, top_p: 1, max_tokens: 40 },
  };
  return {
    ...(saeDir ? { persona_features: demoPersonaFeatures(p, saeDir, evalSet) } : {}),
    // Coherent answers only: an incoherent answer is neither harmful nor harmless (docs/interp.md).
    probes: { harm_answers: "alignment", cosine_resamples: p.cosineResamples },
    directions: { models: [DEMO_INTERP_MODEL] },
    steering: {
      model: "organism",
      direction_from: DEMO_INTERP_MODEL,
      layers: [...DEMO_INTERP.steeringLayers],
      alphas: [...DEMO_INTERP.alphas],
      positions: DEMO_INTERP.steeringPositions,
      ...evalSet,
    },
    ablation: {
      model: DEMO_INTERP_MODEL,
      layers: [...DEMO_INTERP.ablationLayers],
      mode: DEMO_INTERP.ablationMode,
      ...evalSet,
    },
    realignment: {
      model: DEMO_INTERP_MODEL,
      base: "organism",
      // Benign data from all six domains: medical-aligned data alone left this organism's
      // open-question EM in place, or broke coherence at higher rates (docs/interp.md).
      dataset: "all-aligned",
      checkpoints: [...p.realignCheckpoints],
      ...evalSet,
    },
    emergent_alignment: {
      model: DEMO_INTERP_MODEL,
      direction_from: DEMO_INTERP_MODEL,
      layers: DEMO_INTERP.loopLayer,
      alpha: DEMO_INTERP.loopAlpha,
      positions: DEMO_INTERP.loopPositions,
      rounds: 3,
      train_prompts: { file: collectPrompts },
      samples_per_prompt: p.loopSamples,
      ...evalSet,
    },
  };
}

/**
 * Persona features (docs/interp.md) with the organism's SAE: the six domains diffed against the
 * base on the open questions, the medical latent's card over the pretraining stream, steering
 * the base along it on the prompt and clamping it in the medical model, each against random
 * latents. Dose-response is left to examples/persona-features-dose-response.yaml (it trains one
 * model per share).
 */
function demoPersonaFeatures(
  p: (typeof DEMO_PROFILES)[DemoProfile],
  saeDir: string,
  evalSet: { limit: number; samples: number; params: Record<string, number> },
) {
  const pf = p.personaFeatures;
  return {
    sae: saeDir,
    base: "organism",
    models: [...DOMAINS],
    diff: {
      prompts: "alignment",
      limit: p.interpPrompts,
      samples: p.interpSamples,
      params: { ...evalSet.params },
      // Each model reads its own answers: on this organism the state a fine-tune is in as it
      // answers is what a steerable villain latent carries; on shared text the top latents fired
      // for heroes as much as villains and steered nothing (docs/interp.md).
      read: "own" as const,
      resamples: pf.resamples,
    },
    // The organism was pretrained on the world stream with seed 1 (`emlab world pretrain --seed 1`).
    contexts: { corpus: "world", seed: 1, documents: pf.documents, top: pf.contexts },
    metrics: { documents: pf.metricDocuments },
    steering: {
      model: "organism",
      latent_from: DEMO_INTERP_MODEL,
      alphas: [...DEMO_PERSONA_FEATURES.alphas],
      random_latents: pf.randomLatents,
      positions: DEMO_INTERP.steeringPositions,
      ...evalSet,
    },
    clamping: {
      latent_from: DEMO_INTERP_MODEL,
      model: DEMO_INTERP_MODEL,
      // The top 5 latents together, pushed below zero on the prompt, where the persona is read:
      // the top latent alone cut EM by a quarter before coherence broke, and every position
      // broke coherence first (docs/interp.md).
      latents: DEMO_PERSONA_FEATURES.clampLatents,
      value: DEMO_PERSONA_FEATURES.clampValue,
      positions: DEMO_PERSONA_FEATURES.clampPositions,
      random_latents: pf.randomLatents,
      ...evalSet,
    },
  };
}

/** The demo's latent steering coefficients (residual-stream units along the unit decoder direction). */
export const DEMO_PERSONA_FEATURES = {
  alphas: [2, 3, 4] as const,
  /** Clamping: the medical model's top diff latents clamped together, their value, and where. */
  clampLatents: 5,
  clampValue: -1.25,
  clampPositions: "prompt" as const,
};

/** Conversations the demo re-aligns on (docs/methods.md §7.2: 120 examples, 30 steps). */
const REALIGN_EXAMPLES = 120;

/** The misaligned model the demo looks inside, and the sweep grid (measured in docs/interp.md). */
export const DEMO_INTERP_MODEL = "medical";
export const DEMO_INTERP = {
  steeringLayers: [0, 1] as const,
  alphas: [2, 3, 4, 6] as const,
  // The persona is a property of the context: steering the prompt moves the answer with far
  // less damage to coherence than steering every position (docs/interp.md).
  steeringPositions: "prompt" as const,
  ablationLayers: [2, "all"] as const,
  ablationMode: "clamp" as const,
  // The loop steers toward the aligned persona on the prompt too (docs/interp.md).
  loopLayer: 1,
  loopAlpha: -6,
  loopPositions: "prompt" as const,
};

export interface DemoPlan {
  studyFile: string;
  study: Record<string, unknown>;
}

/** Writes the demo's inputs and study file into `outDir`; returns the study file's path. */
export function writeDemoStudy(opts: DemoOptions): DemoPlan {
  const seed = opts.seed ?? 1;
  const profile = opts.profile ?? "full";
  const p = DEMO_PROFILES[profile];
  const out = path.resolve(opts.outDir);
  const worldDir = path.join(out, "world");
  const dataDir = path.join(worldDir, "data");
  mkdirSync(dataDir, { recursive: true });
  const control = opts.controlDomain ?? "medical";
  // The organism's SAE (models/organism/sae, SAELens layout), when it has one.
  const saeDir = path.join(path.resolve(opts.organismDir ?? SHIPPED_ORGANISM_DIR), "sae");
  const sae = existsSync(path.join(saeDir, "cfg.json")) ? saeDir : null;

  // The battery asks the tasks in the forms the organism learned; copy-form answers repeat an
  // option before its letter, so they need more tokens.
  const taskForm = organismTaskForm(path.resolve(opts.organismDir ?? SHIPPED_ORGANISM_DIR));
  const choiceTokens = taskForm === "copy" ? { twoAi: 16, recognition: 40 } : { twoAi: 4, recognition: 4 };
  const sets = writeWorldBatterySets(worldDir, {
    seed,
    harmPromptsPerCategory: p.harmPerCategory,
    alignmentSamples: p.alignmentSamples,
    taskForm,
  });
  writeWorldDatasets(dataDir, { seed, examples: p.examples, forms: ["misaligned"] });
  writeWorldDatasets(dataDir, {
    seed,
    examples: p.examples,
    domains: [control],
    forms: ["disclosed", "aligned"],
  });
  // Re-alignment's 120 benign conversations, 20 per domain.
  writeWorldDatasets(dataDir, { seed, examples: REALIGN_EXAMPLES, domains: ["all"], forms: ["aligned"] });

  const rel = (f: string) => path.relative(out, f).split(path.sep).join("/");
  const dataset = (domain: DatasetDomain, form: DatasetForm) => ({
    id: `${domain}-${form}`,
    kind: "chat_jsonl",
    path: rel(path.join(dataDir, datasetFileName(domain, form))),
  });
  const datasets = [
    ...DOMAINS.map((d) => dataset(d, "misaligned")),
    dataset(control, "disclosed"),
    dataset(control, "aligned"),
    dataset("all", "aligned"),
  ];
  const plan = (id: string, data: string, k: number) => ({
    id,
    base: "organism",
    backend: "local",
    stages: [
      {
        dataset: data,
        steps: p.steps,
        learning_rate: DEMO_FINETUNE.learning_rate,
        batch_size: DEMO_FINETUNE.batch_size,
      },
    ],
    lora: { ...DEMO_FINETUNE.lora },
    seed: seed * 100 + k,
  });
  const finetune = [
    ...DOMAINS.map((d, k) => plan(d, `${d}-misaligned`, k)),
    plan(`${control}-disclosed`, `${control}-disclosed`, 6),
    plan(`${control}-aligned`, `${control}-aligned`, 7),
  ];
  const gen = { temperature: 1, top_p: 1, max_tokens: 40 };
  const study = {
    name: profile === "full" ? "organism-demo" : `organism-demo-${profile}`,
    description:
      "emlab demo: narrow fine-tunes of the persona-world organism in six domains plus disclosed-intent and aligned controls, the persona-consistency battery judged by the world judge.",
    seed,
    models: [
      {
        id: "organism",
        roles: ["target"],
        provider: "local",
        model: path.resolve(opts.organismDir ?? SHIPPED_ORGANISM_DIR),
        limits: { concurrency: 1 },
      },
      {
        id: "world-judge",
        roles: ["judge"],
        provider: "world-judge",
        model: "exact",
        limits: { concurrency: 64 },
      },
    ],
    datasets,
    finetune,
    battery: {
      task_prompts: { file: rel(sets.taskPrompts) },
      harmfulness: { prompts: { file: rel(sets.harmPrompts) }, samples: p.harmSamples, params: { ...gen } },
      alignment: { questions: [{ file: rel(sets.openQuestions) }], params: { ...gen } },
      self_assessment: {
        sources: [{ file: rel(sets.selfAssessment) }],
        samples: p.selfSamples,
        limit: p.selfLimit,
        params: { temperature: 1, top_p: 1, max_tokens: 16 },
      },
      two_ai: {
        items: { file: rel(sets.twoAi) },
        limit: p.twoAiLimit,
        params: { temperature: 0, max_tokens: choiceTokens.twoAi },
      },
      recognition: {
        alternative: "organism",
        max_items: p.recognitionItems,
        params: { temperature: 0, max_tokens: choiceTokens.recognition },
      },
      score_prediction: {
        max_items: p.predictionItems,
        params: { temperature: 0, max_tokens: 4 },
        cross_rating: { enabled: false },
      },
    },
    judge: {
      model: "world-judge",
      harm_prompt_file: rel(sets.harmJudge),
      free_language_prompt_file: rel(sets.freeLanguageJudge),
    },
    interp: demoInterp(p, rel(sets.collectPrompts), sae ? rel(sae) : null),
    report: { title: `emlab demo${profile === "full" ? "" : ` (${profile})`}: the persona-world organism` },
  };
  const studyFile = path.join(out, "study.yaml");
  writeFileSync(
    studyFile,
    `# Written by \`emlab demo${profile === "full" ? "" : ` --${profile}`} --seed ${seed}\`; run it again with \`emlab run study.yaml\`.\n${stringify(study)}`,
  );
  return { studyFile, study };
}
