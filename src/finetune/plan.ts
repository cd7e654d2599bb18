/**
 * Fine-tune plans, resolved before anything is trained: where each plan starts (a study
 * model, or the output of an earlier plan), where it is saved, its datasets tokenized, its
 * settings with defaults filled in, and the model entry the battery sees under the plan's
 * id. Everything that can be wrong is found here, before a run directory is touched.
 */
import path from "node:path";
import { InputError, type InputProblem } from "../config/load.ts";
import { type FinetunePlan, type ModelEntry, ModelEntrySchema, type Study } from "../config/schema.ts";
import type { Conversation } from "../datasets/chat-jsonl.ts";
import type { LoadedDatasets } from "../datasets/study-datasets.ts";
import { chatExamples } from "../engine/chat-examples.ts";
import type { ChatTemplate } from "../engine/io/chat-template.ts";
import type { HfTokenizer } from "../engine/io/tokenizer.ts";
import { checkModelDir } from "../engine/model-dir.ts";
import type { TrainExample } from "../engine/train.ts";
import { deriveSeed } from "../runs/canonical.ts";
import { applyPreset, FINETUNE_PRESETS, type PresetStage } from "./presets.ts";

/**
 * Who trains a plan: the emlab engine (`local`), a GPU trainer the user runs from an exported
 * bundle (`export`), a provider's fine-tuning API (`openai`, `together`), or emlab's HF worker
 * (`worker`: LoRA jobs on the machine that serves the model). Others are refused with the list.
 */
export const FINETUNE_BACKENDS = ["local", "export", "openai", "together", "worker"] as const;
export type FinetuneBackend = (typeof FINETUNE_BACKENDS)[number];
export const REMOTE_BACKENDS = ["openai", "together", "worker"] as const;
export type RemoteBackend = (typeof REMOTE_BACKENDS)[number];
export const isRemoteBackend = (b: string): b is RemoteBackend =>
  (REMOTE_BACKENDS as readonly string[]).includes(b);

/** Tokens per conversation an exported plan trains on when the study does not say (the EM recipes' 2048). */
export const EXPORT_MAX_SEQ_LEN = 2048;

/** Defaults of the stage settings the study leaves out (documented in docs/finetune.md). */
export const STAGE_DEFAULTS = {
  learningRateLora: 2e-4,
  learningRateFull: 1e-4,
  batchSize: 16,
  warmupSteps: 0,
  minLrRatio: 0,
} as const;

/** A model on disk: weights, plus a LoRA adapter to apply to them. */
export interface ModelOnDisk {
  modelDir: string;
  adapterDir?: string;
}

/** One stage with every setting resolved. */
export interface PreparedStage {
  dataset: string;
  /** The dataset's conversations, as loaded (what a provider or an exported trainer gets). */
  conversations: Conversation[];
  /** Tokenized for the local engine (empty for the other backends: they tokenize themselves). */
  examples: TrainExample[];
  epochs: number;
  /** Local: optimizer steps (from epochs unless set). Other backends: only when the study sets it. */
  steps: number;
  /** Backend openai: OpenAI's multiplier (it takes no absolute learning rate). */
  learningRateMultiplier?: number;
  learningRate: number;
  batchSize: number;
  warmupSteps: number;
  minLrRatio: number;
  maxSeqLen: number;
  seed: number;
}

export interface PreparedPlan {
  plan: FinetunePlan;
  backend: FinetuneBackend;
  /** The study model at the root of the chain (a provider's model for the remote backends). */
  root: ModelEntry;
  /** The earlier plan this one continues, if any. */
  parent?: string;
  /** Position in the study's `finetune` list. */
  index: number;
  seed: number;
  /** Where training starts. */
  start: ModelOnDisk;
  /** What training leaves: the adapter or model directory is `outDir`. */
  output: ModelOnDisk;
  /** `<run dir>/finetune/<plan id>`. */
  outDir: string;
  /** The study model at the root of the chain: its tokenizer files travel with full models. */
  rootDir: string;
  stages: PreparedStage[];
  /** The preset's stage settings, when the plan names one (what GPU trainers take beyond the plan's fields). */
  preset?: PresetStage;
  /**
   * The model the battery targets under the plan's id; null for an exported plan (trained
   * elsewhere). A remote plan's `model` is the provider's name for it only once its job has
   * finished (`withTrainedModel`).
   */
  model: ModelEntry | null;
}

export const finetuneDir = (runDir: string, planId: string) => path.resolve(runDir, "finetune", planId);

interface Root {
  entry: ModelEntry;
  dir: string;
  tokenizer: HfTokenizer;
  template: ChatTemplate;
  maxPositions: number;
}

/**
 * Resolves every plan of the study, in order. Throws InputError (naming `finetune[i]...`)
 * for an unknown backend, a base model that cannot be loaded, or data that cannot be trained on.
 */
export function prepareFinetune(
  study: Study,
  studyFile: string,
  runDir: string,
  datasets: LoadedDatasets,
): PreparedPlan[] {
  const studyDir = path.dirname(studyFile);
  const problems: InputProblem[] = [];
  const roots = new Map<string, Root | null>();
  const prepared: PreparedPlan[] = [];
  const planRoots = new Map<string, Root>();
  const where = (field: string) => ({ file: studyFile, field });

  const rootOf = (entry: ModelEntry, field: string): Root | null => {
    if (roots.has(entry.id)) return roots.get(entry.id)!;
    const dir = path.resolve(studyDir, entry.model);
    // The same check as the study's preflight (src/engine/model-dir.ts): config, weights' headers, tokenizer, template.
    const named = entry.options?.chat_template;
    const {
      problems: broken,
      shape,
      tokenizer,
      template,
    } = checkModelDir(dir, {
      chatTemplate: typeof named === "string" ? path.resolve(studyDir, named) : undefined,
    });
    for (const message of broken)
      problems.push({ ...where(field), message: `model '${entry.id}': ${message}` });
    const root =
      broken.length === 0 && shape && tokenizer && template
        ? { entry, dir, tokenizer, template, maxPositions: shape.maxPositions }
        : null;
    roots.set(entry.id, root);
    return root;
  };

  study.finetune.forEach((declared, i) => {
    const field = `finetune[${i}]`;
    let plan = declared;
    let preset: PresetStage | undefined;
    if (declared.preset !== undefined) {
      try {
        ({ plan, preset } = withPreset(declared));
      } catch (e) {
        problems.push({ ...where(`${field}.preset`), message: (e as Error).message });
        return;
      }
    }
    if (!(FINETUNE_BACKENDS as readonly string[]).includes(plan.backend)) {
      problems.push({
        ...where(`${field}.backend`),
        message: `unknown backend '${plan.backend}' (known: ${FINETUNE_BACKENDS.join(", ")})`,
      });
      return;
    }
    const parent = prepared.find((p) => p.plan.id === plan.base);
    const baseEntry = study.models.find((m) => m.id === plan.base);
    if (plan.backend !== "local") {
      const other = prepareHostedPlan(
        study,
        plan,
        i,
        parent,
        baseEntry,
        runDir,
        datasets,
        problems,
        studyFile,
      );
      if (other) prepared.push({ ...other, ...(preset ? { preset } : {}) });
      return;
    }
    let root: Root | null;
    let start: ModelOnDisk;
    if (parent) {
      root = planRoots.get(parent.plan.id) ?? null;
      start = parent.output;
    } else if (baseEntry) {
      root = rootOf(baseEntry, `${field}.base`);
      const adapter = baseEntry.options?.adapter;
      start = {
        modelDir: root?.dir ?? baseEntry.model,
        adapterDir: typeof adapter === "string" ? path.resolve(studyDir, adapter) : undefined,
      };
    } else {
      // The schema already refused an unknown base; a failed parent was reported above.
      return;
    }
    if (!root) return;

    const seed = plan.seed ?? deriveSeed(study.seed, "finetune", plan.id);
    const stages: PreparedStage[] = [];
    plan.stages.forEach((s, j) => {
      const conversations = datasets.get(s.dataset);
      if (!conversations) return; // unknown dataset: the schema reported it
      let examples: TrainExample[];
      try {
        examples = chatExamples(conversations, root.tokenizer, root.template);
      } catch (e) {
        problems.push({
          ...where(`${field}.stages[${j}].dataset`),
          message: `dataset '${s.dataset}': ${(e as Error).message}`,
        });
        return;
      }
      stages.push({
        ...stageSettings(plan, j, seed, examples.length),
        conversations,
        examples,
        maxSeqLen: Math.min(s.max_seq_len ?? root.maxPositions, root.maxPositions),
      });
    });
    if (stages.length !== plan.stages.length) return;

    const outDir = finetuneDir(runDir, plan.id);
    const output: ModelOnDisk = plan.lora
      ? { modelDir: start.modelDir, adapterDir: outDir }
      : { modelDir: outDir };
    const { adapter: _, ...rootOptions } = root.entry.options ?? {};
    const options = output.adapterDir ? { ...rootOptions, adapter: output.adapterDir } : rootOptions;
    const model = ModelEntrySchema.parse({
      id: plan.id,
      roles: ["target"],
      provider: "local",
      model: output.modelDir,
      ...(Object.keys(options).length > 0 ? { options } : {}),
      limits: root.entry.limits,
      base: plan.base,
    });
    planRoots.set(plan.id, root);
    prepared.push({
      ...(preset ? { preset } : {}),
      plan,
      backend: "local",
      root: root.entry,
      ...(parent ? { parent: parent.plan.id } : {}),
      index: i,
      seed,
      start,
      output,
      outDir,
      rootDir: root.dir,
      stages,
      model,
    });
  });
  if (problems.length > 0) throw new InputError(problems);
  return prepared;
}

/** A stage's settings with the defaults filled in, for `count` conversations (all but the data and its length cap). */
function stageSettings(
  plan: FinetunePlan,
  j: number,
  planSeed: number,
  count: number,
): Omit<PreparedStage, "conversations" | "examples" | "maxSeqLen"> {
  const s = plan.stages[j];
  const batchSize = s.batch_size ?? STAGE_DEFAULTS.batchSize;
  return {
    dataset: s.dataset,
    epochs: s.epochs,
    // The Trainer's own rule (epochs over the data, at least one step), fixed here so progress knows it.
    steps: s.steps ?? Math.max(1, Math.ceil((s.epochs * count) / batchSize)),
    ...(s.learning_rate_multiplier !== undefined
      ? { learningRateMultiplier: s.learning_rate_multiplier }
      : {}),
    learningRate:
      s.learning_rate ?? (plan.lora ? STAGE_DEFAULTS.learningRateLora : STAGE_DEFAULTS.learningRateFull),
    batchSize,
    warmupSteps: s.warmup_steps ?? STAGE_DEFAULTS.warmupSteps,
    minLrRatio: s.min_lr_ratio ?? STAGE_DEFAULTS.minLrRatio,
    seed: deriveSeed(planSeed, "stage", j),
  };
}

/**
 * A plan for the export or a remote backend: its stages with the settings resolved, nothing
 * tokenized (the trainer or the provider tokenizes), and for a remote plan the target it
 * becomes: the root model's provider entry, under the plan's id.
 */
function prepareHostedPlan(
  study: Study,
  plan: FinetunePlan,
  i: number,
  parent: PreparedPlan | undefined,
  baseEntry: ModelEntry | undefined,
  runDir: string,
  datasets: LoadedDatasets,
  problems: InputProblem[],
  studyFile: string,
): PreparedPlan | null {
  const backend = plan.backend as FinetuneBackend;
  const field = `finetune[${i}]`;
  if (backend === "export" && parent) {
    problems.push({
      file: studyFile,
      field: `${field}.base`,
      message: `an exported plan cannot start from plan '${parent.plan.id}' (it is trained elsewhere): put both datasets in one plan's stages`,
    });
    return null;
  }
  const root = parent ? parent.root : baseEntry;
  if (!root) return null; // an unknown base: the schema reported it
  const seed = plan.seed ?? deriveSeed(study.seed, "finetune", plan.id);
  const stages: PreparedStage[] = [];
  for (const [j, s] of plan.stages.entries()) {
    const conversations = datasets.get(s.dataset);
    if (!conversations) return null;
    stages.push({
      ...stageSettings(plan, j, seed, conversations.length),
      conversations,
      examples: [],
      maxSeqLen: s.max_seq_len ?? EXPORT_MAX_SEQ_LEN,
    });
  }
  const outDir = finetuneDir(runDir, plan.id);
  const model =
    backend === "export"
      ? null
      : ModelEntrySchema.parse({
          ...root,
          id: plan.id,
          roles: ["target"],
          // The provider names the model when the job finishes (withTrainedModel).
          model: `pending:${plan.id}`,
          base: plan.base,
        });
  return {
    plan,
    backend,
    root,
    ...(parent ? { parent: parent.plan.id } : {}),
    index: i,
    seed,
    start: { modelDir: root.model },
    output: { modelDir: outDir },
    outDir,
    rootDir: root.model,
    stages,
    model,
  };
}

/**
 * A plan with its preset's settings filling what it leaves out: the preset's whole `lora` block
 * when the plan has none, and each stage's learning rate, batch size, warmup, lr floor and
 * sequence length. (Epochs have a schema default, so a plan says them itself.)
 */
function withPreset(plan: FinetunePlan): { plan: FinetunePlan; preset: PresetStage } {
  const name = plan.preset!;
  if (!FINETUNE_PRESETS[name])
    throw new Error(`unknown preset '${name}' (known: ${Object.keys(FINETUNE_PRESETS).join(", ")})`);
  const { lora, stage } = applyPreset(name);
  return {
    preset: stage,
    plan: {
      ...plan,
      lora: plan.lora ?? lora,
      stages: plan.stages.map((s) => ({
        ...s,
        learning_rate: s.learning_rate ?? stage.learning_rate,
        batch_size: s.batch_size ?? stage.batch_size,
        warmup_steps: s.warmup_steps ?? stage.warmup_steps,
        min_lr_ratio: s.min_lr_ratio ?? stage.min_lr_ratio,
        max_seq_len: s.max_seq_len ?? stage.max_seq_len,
      })),
    },
  };
}

/** The study's models plus one target per trained plan: the list the battery and the store use. */
export function withPlanModels(study: Study, plans: PreparedPlan[]): Study {
  const models = plans.flatMap((p) => (p.model ? [p.model] : []));
  if (models.length === 0) return study;
  return { ...study, models: [...study.models, ...models] };
}
