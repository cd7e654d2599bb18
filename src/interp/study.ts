/**
 * The interp stage of `emlab run` (docs/methods.md §3.7, §5-§7): after the battery, on the study's
 * local models, read activations of the battery's judged answers from the run store and run
 * the study's `interp` sections — harm and self-assessment probes, persona directions,
 * steering and ablation sweeps judged by the study's judge, re-alignment and the
 * emergent-alignment loop (both fine-tune in memory) — into results.json's `interp` block.
 * `loadInterp` checks the section before the run directory is touched; `runInterp` does the
 * work and returns null when the run's abort signal fires (results.json is then not written,
 * as for the battery). Every generation and judge question of the sweeps and the training
 * sections is a stored request made through the run's scheduler (requests.ts,
 * stored-sweep.ts): cached, resumable, visible in the viewer; a group with failed requests
 * throws InterpIncomplete.
 */

import path from "node:path";
import { betleyCuts } from "../battery/alignment.ts";
import { harmTemplate } from "../battery/harmfulness.ts";
import { judgmentsByAnswer } from "../battery/judged.ts";
import type { LoadedExperiment } from "../battery/pipeline.ts";
import { PARSER_ID, SELF_METRIC } from "../battery/self-assessment.ts";
import { loadPromptList } from "../battery/sources/prompts.ts";
import { answerKey, type RunContext, storedAnswers } from "../battery/stage.ts";
import type { InterpConfig, InterpSweepConfig, SweepPromptsConfig } from "../config/interp.ts";
import { InputError } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import type { LocalModelApi } from "../models/local.ts";
import type { ChatMessage } from "../models/types.ts";
import type { InterpCondition, InterpResults } from "../results/interp.ts";
import type { JudgmentRow } from "../runs/rows.ts";
import type { SchedulerResult } from "../runs/scheduler.ts";
import { type ActivationDataset, type Conversation, saveActivations } from "./activations.ts";
import {
  cosineAcrossModels,
  meanProjection,
  type PersonaJudgement,
  personaDirections,
  randomLike,
  summarizeDirections,
} from "./directions.ts";
import { runEmergentAlignment } from "./emergent-alignment.ts";
import { ablationEdits, clampEdits, type PositionSpec } from "./interventions.ts";
import { crossValidateProbe, probeCosine, probeTransferMatrix } from "./probes.ts";
import { runRealignment } from "./realignment.ts";
import { InterpRequester, type InterpSchedulerDeps } from "./requests.ts";
import { ci, fin, rateOf } from "./result-numbers.ts";
import { storedSweep } from "./stored-sweep.ts";
import { InterpInterrupted, type SweepJudgeSpec } from "./study-judge.ts";
import { checkTrainingSections, type EmergentAlignmentPlan, type RealignmentPlan } from "./study-training.ts";
import { type SweepCondition, type SweepResult, sweepConditions } from "./sweep.ts";
import type { TrainingSectionContext } from "./training-context.ts";
import { vectorsHash } from "./vectors.ts";
import { WHITE_BOX_PROVIDERS, type WhiteBoxModel } from "./white-box.ts";

type ProbesResult = NonNullable<InterpResults["probes"]>;
type DirectionsResult = NonNullable<InterpResults["directions"]>;
type SweepBlock = NonNullable<InterpResults["ablation"]>;

/** The checked interp section: which models it needs and the sweep prompts, read up front. */
export interface InterpPlan {
  config: InterpConfig;
  /** Local model ids the stage loads, in first-use order. */
  models: string[];
  probeModels: string[];
  prompts: Partial<Record<"steering" | "ablation", string[]>>;
  realignment?: RealignmentPlan;
  emergentAlignment?: EmergentAlignmentPlan;
  /** The harm rubric and the alignment coherent prompt (null when the study has none), for the sweep judge. */
  harmTemplate: string | null;
  coherentTemplate: string | null;
}

/**
 * Checks `study.interp` (the study with its fine-tune plan models) and reads the sweep
 * prompts. Bad input throws an InputError naming `interp.<section>.<field>`.
 */
export function loadInterp(
  study: Study,
  file: string,
  battery: readonly LoadedExperiment[],
  judgeId: string | undefined,
): InterpPlan | undefined {
  const config = study.interp;
  if (!config) return undefined;
  const problems: { file: string; field: string; message: string }[] = [];
  const fail = (field: string, message: string) => problems.push({ file, field: `interp.${field}`, message });
  const enabled = (name: string) => battery.some((l) => l.experiment.name === name);
  const batteryModels = (name: string) =>
    battery.find((l) => l.experiment.name === name)?.experiment.models(study) ?? [];
  const checkLocal = (field: string, id: string) => {
    const m = study.models.find((x) => x.id === id);
    if (!m) fail(field, `unknown model id '${id}' (not a study model or fine-tune plan id)`);
    else if (m.provider !== "local")
      fail(
        field,
        `model '${id}' has provider '${m.provider}'; this section trains the model: interp needs a local model for it`,
      );
  };
  // Probes, directions, steering and ablation read activations and edit the residual stream:
  // the embedded engine or an HF worker does that (src/interp/white-box.ts).
  const checkWhiteBox = (field: string, id: string) => {
    const m = study.models.find((x) => x.id === id);
    if (!m) fail(field, `unknown model id '${id}' (not a study model or fine-tune plan id)`);
    else if (!WHITE_BOX_PROVIDERS.has(m.provider))
      fail(
        field,
        `model '${id}' has provider '${m.provider}'; interp needs a model it can look inside (provider ${[...WHITE_BOX_PROVIDERS].join(" or ")})`,
      );
  };
  const models: string[] = [];
  const use = (id: string) => {
    if (!models.includes(id)) models.push(id);
  };

  let probeModels: string[] = [];
  if (config.probes) {
    probeModels =
      config.probes.models ??
      study.models
        .filter((m) => WHITE_BOX_PROVIDERS.has(m.provider) && m.roles.includes("target"))
        .map((m) => m.id);
    const source = config.probes.harm_answers;
    if (!enabled(source)) fail("probes", `needs battery.${source} (the harm probe's answers)`);
    if (probeModels.length === 0) fail("probes.models", "no local or hf-worker target models to probe");
    probeModels.forEach((id, i) => {
      checkWhiteBox(`probes.models[${i}]`, id);
      if (enabled(source) && !batteryModels(source).includes(id))
        fail(`probes.models[${i}]`, `model '${id}' gets no ${source} answers (battery.${source}.models)`);
      use(id);
    });
  }
  const d = config.directions;
  if (d) {
    if (!enabled("alignment")) fail("directions", "needs battery.alignment (the judged answers it splits)");
    d.models.forEach((id, i) => {
      checkWhiteBox(`directions.models[${i}]`, id);
      if (enabled("alignment") && !batteryModels("alignment").includes(id))
        fail(`directions.models[${i}]`, `model '${id}' gets no alignment answers (battery.alignment.models)`);
      use(id);
    });
  }
  const prompts: InterpPlan["prompts"] = {};
  const harm = enabled("harmfulness") ? harmTemplate(study, file).template : null;
  // Sections that judge answers need the study's judge and the harm rubric.
  const needJudge = (name: string) => {
    if (!judgeId) fail(name, "needs the study's judge (judge.model or a model with the judge role)");
    if (harm === null) fail(name, "needs battery.harmfulness (the judge's harm rubric)");
  };
  /** A section's evaluation prompts (texts), limited; undefined after a reported problem. */
  const readPrompts = (name: string, s: { prompts: SweepPromptsConfig; limit?: number }) => {
    let list: string[] | undefined;
    if (s.prompts === "harmfulness") {
      const spec = study.battery.harmfulness;
      if (!spec?.enabled) fail(`${name}.prompts`, '"harmfulness" needs battery.harmfulness');
      else
        list = loadPromptList(spec.prompts, file, "battery.harmfulness.prompts", spec.limit).map(
          (p) => p.text,
        );
    } else {
      try {
        list = loadPromptList({ file: s.prompts.file }, file, `interp.${name}.prompts`).map((p) => p.text);
      } catch (e) {
        if (e instanceof InputError) throw e;
        fail(`${name}.prompts`, (e as Error).message);
      }
    }
    if (list && s.limit) list = list.slice(0, s.limit);
    if (list?.length === 0) fail(`${name}.prompts`, "no prompts");
    return list;
  };
  for (const name of ["steering", "ablation"] as const) {
    const s = config[name];
    if (!s) continue;
    checkWhiteBox(`${name}.model`, s.model);
    use(s.model);
    const from = s.direction_from ?? s.model;
    if (!d) fail(name, "needs interp.directions (the persona direction it applies)");
    else if (!d.models.includes(from))
      fail(`${name}.direction_from`, `model '${from}' is not in interp.directions.models`);
    if (d?.layers)
      s.layers.forEach((l, i) => {
        if (l === "all")
          fail(
            `${name}.layers[${i}]`,
            '"all" needs directions at every layer (leave out interp.directions.layers)',
          );
        else if (!d.layers!.includes(l))
          fail(`${name}.layers[${i}]`, `layer ${l} is not in interp.directions.layers`);
      });
    needJudge(name);
    prompts[name] = readPrompts(name, s);
  }
  const training = checkTrainingSections({
    study,
    file,
    battery,
    fail,
    checkLocal,
    use,
    needJudge,
    readPrompts,
  });
  if (problems.length) throw new InputError(problems);
  return {
    config,
    models,
    probeModels,
    prompts,
    ...training,
    harmTemplate: harm,
    coherentTemplate: coherentTemplate(battery),
  };
}

/** The first coherent prompt of the alignment experiment's questions (null without one). */
function coherentTemplate(battery: readonly LoadedExperiment[]): string | null {
  const l = battery.find((x) => x.experiment.name === "alignment");
  const qs = (l?.inputs as { questions?: Map<string, { judge_prompts: Record<string, string> }> })?.questions;
  for (const q of qs?.values() ?? []) if (q.judge_prompts.coherent) return q.judge_prompts.coherent;
  return null;
}

export interface InterpRunOptions {
  ctx: RunContext;
  plan: InterpPlan;
  runDir: string;
  /** The local model behind a study model id (loaded once; the caller closes it): training sections. */
  model: (id: string) => LocalModelApi;
  /** The model behind a study model id as the reading and editing sections see it (local or hf-worker). */
  whiteBox: (id: string) => WhiteBoxModel;
  /**
   * The run's scheduler and store: every generation and judge question of the sweeps and the
   * training sections is a stored request made through it (the judge is its target for the
   * study's judge model).
   */
  scheduler: InterpSchedulerDeps;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** What the stage stored and asked, for the run's summary. */
export interface InterpStageCounts {
  planned: number;
  added: number;
  cacheHits: number;
  /** The last scheduler result (the store's totals), when the stage made any request. */
  last?: SchedulerResult;
}

/** Adds what a requester planned, stored and took from the cache to the stage's counts. */
export function addRequesterCounts(counts: InterpStageCounts, requests: InterpRequester): void {
  counts.planned += requests.planned;
  counts.added += requests.added;
  counts.cacheHits += requests.cacheHits;
  if (requests.last) counts.last = requests.last;
}

/** A labelled answer set of one model: its conversations, and per-row judge data. */
interface AnswerSet<J> {
  conversations: Conversation[];
  keys: string[];
  data: J[];
}

/**
 * Runs the interp sections; null when interrupted. Throws InterpIncomplete when a group of
 * its requests ends with failed ones (nothing is planned from them; `--retry-failed` retries).
 * `counts` (when given) receives what the stage planned and asked.
 */
export async function runInterp(
  o: InterpRunOptions,
  counts?: InterpStageCounts,
): Promise<InterpResults | null> {
  const requests = new InterpRequester(o.scheduler);
  try {
    return await runSections(o, requests);
  } catch (e) {
    if (e instanceof InterpInterrupted) return null;
    throw e;
  } finally {
    requests.finish();
    if (counts) addRequesterCounts(counts, requests);
  }
}

async function runSections(o: InterpRunOptions, requests: InterpRequester): Promise<InterpResults> {
  const { ctx, plan, runDir } = o;
  const cfg = plan.config;
  const log = o.log ?? (() => {});
  const check = () => {
    if (o.signal?.aborted) throw new InterpInterrupted();
  };
  const activations: InterpResults["activations"] = {};
  const collect = async (
    modelId: string,
    set: string,
    conv: Conversation[],
    keys: string[],
    layers?: number[],
    position?: "answer_mean" | "last",
  ) => {
    check();
    const ds = await o.whiteBox(modelId).collect(conv, { layers, position });
    ds.keys = keys;
    const rel = path.join("interp", "activations", modelId, set);
    saveActivations(path.join(runDir, rel), ds);
    const relPosix = rel.split(path.sep).join("/");
    ctx.store.addArtifact({
      id: `interp:activations:${modelId}:${set}`,
      kind: "interp_activations",
      path: relPosix,
      sha256: null,
      meta: {
        model: modelId,
        set,
        count: ds.answerTokens.length,
        layers: ds.layers,
        position: ds.position,
      },
    });
    activations[modelId] = { ...activations[modelId], [set]: relPosix };
    log(`interp: ${modelId} ${set}: activations of ${conv.length} answer(s) at ${ds.layers.length} layer(s)`);
    return ds;
  };

  const out: InterpResults = { activations };
  if (cfg.probes) out.probes = await probes(o, collect, check);
  let dirs: Map<string, DirectionData> = new Map();
  if (cfg.directions) {
    const r = await directions(o, collect, check);
    out.directions = r.block;
    dirs = r.data;
  }
  const judge: SweepJudgeSpec | null =
    cfg.steering || cfg.ablation || cfg.realignment || cfg.emergent_alignment
      ? {
          setup: ctx.judge!,
          harmTemplate: plan.harmTemplate!,
          coherentTemplate: plan.coherentTemplate,
          harmfulScore: ctx.study.judge.thresholds.harmful_score,
          isCoherent: betleyCuts(ctx.study).isCoherent,
        }
      : null;
  for (const name of ["steering", "ablation"] as const) {
    const s = cfg[name];
    if (!s || !judge) continue;
    check();
    log(`interp: ${name} sweep on ${s.model}`);
    const dir = dirs.get(s.direction_from ?? s.model);
    const block = await sweep(o, requests, name, s, dir, plan.prompts[name]!, judge);
    if (name === "steering") out.steering = { ...block, alphas: cfg.steering!.alphas };
    else out.ablation = { ...block, mode: cfg.ablation!.mode, reduction: reductions(block.conditions) };
  }
  if (judge && (plan.realignment || plan.emergentAlignment)) {
    const x: TrainingSectionContext = {
      model: o.model,
      requests,
      judge,
      judgeInfo: sweepJudgeInfo(o),
      check,
      log,
    };
    if (cfg.realignment && plan.realignment) {
      log(`interp: realignment of ${cfg.realignment.model}`);
      out.realignment = await runRealignment(x, cfg.realignment, plan.realignment);
    }
    const e = cfg.emergent_alignment;
    if (e && plan.emergentAlignment) {
      log(`interp: emergent-alignment loop on ${e.model}`);
      out.emergent_alignment = await runEmergentAlignment(
        x,
        e,
        plan.emergentAlignment,
        dirs.get(e.direction_from)?.vectors,
      );
    }
  }
  return out;
}

/** The sweep judge's settings, as every judged block records them. */
function sweepJudgeInfo(o: InterpRunOptions): SweepBlock["judge"] {
  return {
    model: o.ctx.judge!.modelId,
    harmful_score: o.ctx.study.judge.thresholds.harmful_score,
    coherence: o.plan.coherentTemplate ? "alignment_prompt" : "harm_readable",
  };
}

type Collect = (
  modelId: string,
  set: string,
  conv: Conversation[],
  keys: string[],
  layers?: number[],
  position?: "answer_mean" | "last",
) => Promise<ActivationDataset>;

function conversationOf(a: {
  request: { messages: ChatMessage[] };
  completion: { text: string };
}): Conversation {
  return { messages: a.request.messages, answer: a.completion.text };
}

/** Judged answers of one experiment and model, keeping rows whose judge data `pick` reads. */
function answerSet<J>(
  ctx: RunContext,
  experiment: string,
  modelId: string,
  pick: (key: string) => J | null,
): AnswerSet<J> {
  const set: AnswerSet<J> = { conversations: [], keys: [], data: [] };
  for (const a of storedAnswers(ctx, experiment, modelId)) {
    // An empty answer has no tokens to read activations from.
    if (a.completion.text.trim() === "") continue;
    const key = answerKey(a.request.id, a.completion.sample_index);
    const j = pick(key);
    if (j === null) continue;
    set.conversations.push(conversationOf(a));
    set.keys.push(key);
    set.data.push(j);
  }
  return set;
}

async function probes(o: InterpRunOptions, collect: Collect, check: () => void): Promise<ProbesResult> {
  const { ctx, plan } = o;
  const p = plan.config.probes!;
  const threshold = ctx.study.judge.thresholds.harmful_score;
  const harmJ = judgmentsByAnswer(ctx, "harm");
  const alignedJ = judgmentsByAnswer(ctx, "aligned");
  const coherentJ = judgmentsByAnswer(ctx, "coherent");
  const selfParsed = judgmentsByAnswer(ctx, SELF_METRIC, PARSER_ID);
  const selfJudged = ctx.judge ? judgmentsByAnswer(ctx, SELF_METRIC) : new Map<string, JudgmentRow>();
  const cvOpts = { folds: p.folds, seed: p.seed, C: p.C };
  const models: ProbesResult["models"] = {};
  const harmRows = new Map<string, { rows: Map<number, Float32Array[]>; labels: number[] }>();
  for (const id of plan.probeModels) {
    check();
    const harmSet =
      p.harm_answers === "alignment"
        ? answerSet(ctx, "alignment", id, (k) => {
            const a = alignedJ.get(k)?.score;
            const c = coherentJ.get(k)?.score;
            if (a == null || c == null || !(c > p.coherent_above)) return null;
            return a <= p.misaligned_at_most ? 1 : a > p.aligned_above ? 0 : null;
          })
        : answerSet(ctx, "harmfulness", id, (k) => {
            const s = harmJ.get(k)?.score;
            return s === null || s === undefined ? null : s >= threshold ? 1 : 0;
          });
    const selfSet = answerSet(ctx, "self_assessment", id, (k) => {
      // Rule-read formats are stored 0-1; the free-language judge's score is 0-100.
      const judged = selfJudged.get(k)?.score;
      const s = selfParsed.get(k)?.score ?? (judged == null ? null : judged / 100);
      // 0.5 is neither side (docs/methods.md §3.7): such answers are left out.
      return s === null || s === undefined || s === 0.5 ? null : s > 0.5 ? 1 : 0;
    });
    const fitSet = async (set: AnswerSet<number>, name: string) => {
      const positives = set.data.filter((l) => l === 1).length;
      const base = { n: set.data.length, positives };
      const problem = oneClass(set.data, p.folds);
      if (problem) return { result: { ...base, skipped: problem, layers: [] }, ds: null };
      const ds = await collect(id, name, set.conversations, set.keys, p.layers, p.position);
      ds.labels = set.data;
      const layers = ds.layers.map((layer) => {
        const cv = crossValidateProbe(ds.rows.get(layer)!, set.data, cvOpts);
        return {
          layer,
          accuracy: fin(cv.accuracy),
          accuracy_ci: ci(cv.accuracyCi),
          auc: fin(cv.auc),
          auc_ci: ci(cv.aucCi),
        };
      });
      return { result: { ...base, skipped: null, layers }, ds };
    };
    const harm = await fitSet(harmSet, "harm");
    const self = await fitSet(selfSet, "self");
    const cosine: ProbesResult["models"][string]["cosine"] = [];
    if (harm.ds && self.ds)
      for (const layer of harm.ds.layers) {
        check();
        const c = probeCosine(
          { rows: harm.ds.rows.get(layer)!, labels: harmSet.data },
          { rows: self.ds.rows.get(layer)!, labels: selfSet.data },
          { C: p.C, seed: p.seed, resamples: p.cosine_resamples, paired: false },
        );
        cosine.push({ layer, cosine: fin(c.cosine), ci: ci(c.ci), used: c.used });
      }
    if (harm.ds) harmRows.set(id, { rows: harm.ds.rows, labels: harmSet.data });
    models[id] = { harm: harm.result, self: self.result, cosine };
  }
  // Transfer at the layer whose harm probe has the best mean CV AUC over the probed models.
  const withHarm = [...harmRows.keys()];
  let transfer: ProbesResult["transfer"] = null;
  let transferSkipped: string | null = null;
  if (withHarm.length < 2) transferSkipped = "needs two models with a harm probe";
  else {
    const layers = models[withHarm[0]].harm.layers.map((l) => l.layer);
    const meanAuc = (layer: number) =>
      withHarm.reduce((s, id) => s + (models[id].harm.layers.find((l) => l.layer === layer)?.auc ?? 0), 0);
    const best = layers.reduce((b, l) => (meanAuc(l) > meanAuc(b) ? l : b), layers[0]);
    check();
    const m = probeTransferMatrix(
      withHarm.map((id) => ({
        name: id,
        rows: harmRows.get(id)!.rows.get(best)!,
        labels: harmRows.get(id)!.labels,
      })),
      { ...cvOpts, layer: best },
    );
    transfer = {
      layer: best,
      models: m.models,
      accuracy: m.accuracy.map((r) => r.map(fin)),
      accuracy_ci: m.accuracyCi.map((r) => r.map(ci)),
      auc: m.auc.map((r) => r.map(fin)),
    };
  }
  return {
    position: p.position,
    folds: p.folds,
    seed: p.seed,
    C: p.C,
    harm_answers: p.harm_answers,
    harmful_score: threshold,
    models,
    transfer,
    transfer_skipped: transferSkipped,
  };
}

/** Why labels cannot be cross-validated in `folds` folds (null when they can). */
function oneClass(labels: readonly number[], folds: number): string | null {
  const pos = labels.filter((l) => l === 1).length;
  const neg = labels.length - pos;
  if (labels.length === 0) return "no judged answers";
  if (pos === 0 || neg === 0) return `one class only (${pos} positive, ${neg} negative)`;
  if (Math.min(pos, neg) < folds)
    return `too few of one class for ${folds} folds (${pos} positive, ${neg} negative)`;
  return null;
}

interface DirectionData {
  vectors: Map<number, Float32Array>;
  /** The aligned set's rows per layer (the clamp target's source). */
  alignedRows: Map<number, Float32Array[]>;
}

async function directions(
  o: InterpRunOptions,
  collect: Collect,
  check: () => void,
): Promise<{ block: DirectionsResult; data: Map<string, DirectionData> }> {
  const { ctx } = o;
  const d = o.plan.config.directions!;
  const aligned = judgmentsByAnswer(ctx, "aligned");
  const coherent = judgmentsByAnswer(ctx, "coherent");
  const data = new Map<string, DirectionData>();
  const models: DirectionsResult["models"] = {};
  for (const id of d.models) {
    check();
    const set = answerSet<PersonaJudgement>(ctx, "alignment", id, (k) => {
      const a = aligned.get(k);
      const c = coherent.get(k);
      return a || c ? { aligned: a?.score ?? null, coherent: c?.score ?? null } : null;
    });
    const empty = {
      answers: set.data.length,
      count: 0,
      available_aligned: 0,
      available_misaligned: 0,
      layers: [],
      cosine_across_layers: [],
    };
    if (set.data.length === 0) {
      models[id] = { ...empty, skipped: "no judged alignment answers" };
      continue;
    }
    const ds = await collect(id, "alignment", set.conversations, set.keys, d.layers, d.position);
    let dirs: ReturnType<typeof personaDirections>;
    try {
      dirs = personaDirections(ds, set.data, {
        coherentAbove: d.coherent_above,
        alignedAbove: d.aligned_above,
        misalignedAtMost: d.misaligned_at_most,
        seed: d.seed,
      });
    } catch (e) {
      models[id] = { ...empty, skipped: (e as Error).message };
      continue;
    }
    const s = summarizeDirections(dirs);
    models[id] = {
      skipped: null,
      answers: set.data.length,
      count: s.count,
      available_aligned: s.availableAligned,
      available_misaligned: s.availableMisaligned,
      layers: s.layers,
      cosine_across_layers: s.cosineAcrossLayers.map((r) => r.map(fin)),
    };
    data.set(id, {
      vectors: dirs.vectors,
      alignedRows: new Map(ds.layers.map((l) => [l, dirs.split.aligned.map((i) => ds.rows.get(l)![i])])),
    });
  }
  const ids = [...data.keys()];
  const cross_model: DirectionsResult["cross_model"] = [];
  for (let i = 0; i < ids.length; i++)
    for (let j = i + 1; j < ids.length; j++)
      cross_model.push({
        a: ids[i],
        b: ids[j],
        layers: cosineAcrossModels(data.get(ids[i])!.vectors, data.get(ids[j])!.vectors).map((c) => ({
          layer: c.layer,
          cosine: fin(c.cosine),
        })),
      });
  return {
    block: {
      position: d.position,
      coherent_above: d.coherent_above,
      aligned_above: d.aligned_above,
      misaligned_at_most: d.misaligned_at_most,
      seed: d.seed,
      models,
      cross_model,
    },
    data,
  };
}

async function sweep(
  o: InterpRunOptions,
  requests: InterpRequester,
  name: "steering" | "ablation",
  s: InterpSweepConfig,
  dir: DirectionData | undefined,
  prompts: string[],
  judge: SweepJudgeSpec,
): Promise<Omit<SweepBlock, "mode" | "reduction">> {
  const from = s.direction_from ?? s.model;
  const base = {
    model: s.model,
    direction_from: from,
    prompts: prompts.length,
    samples: s.samples,
    seed: s.seed,
    random_seed: s.random_seed,
    positions: s.positions,
    judge: sweepJudgeInfo(o),
  };
  if (!dir)
    return { ...base, skipped: `model '${from}' has no persona direction (see directions)`, conditions: [] };
  const wb = o.whiteBox(s.model);
  const nLayers = await wb.layers();
  const positions: PositionSpec = await wb.generationPositions(s.positions);
  const layerSets = s.layers.map((l) => (l === "all" ? ("all" as const) : [l]));
  for (const l of s.layers)
    if (l !== "all" && l >= nLayers)
      throw new Error(`interp.${name}.layers: layer ${l} is not a block of ${s.model} (${nLayers} blocks)`);
  let conditions: SweepCondition[];
  const kinds = new Map<string, InterpCondition["kind"]>();
  // What makes each hooked condition's answers differ from the plain model's (its cache identity).
  const variants = new Map<string, unknown>();
  const hashes = {
    direction: vectorsHash(dir.vectors),
    random: vectorsHash(randomLike(dir.vectors, s.random_seed)),
  };
  if (name === "steering") {
    conditions = sweepConditions({
      direction: dir.vectors,
      randomSeed: s.random_seed,
      alphas: (s as { alphas: number[] }).alphas,
      layerSets,
      nLayers,
      positions,
    });
    for (const c of conditions)
      if (c.edits && c.vector)
        variants.set(c.name, {
          v: 1,
          section: name,
          kind: c.kind,
          vector: hashes[c.vector],
          alpha: c.alpha,
          layers: c.layers,
          positions,
        });
  } else {
    const clamp = (s as { mode: string }).mode === "clamp";
    const random = randomLike(dir.vectors, s.random_seed);
    conditions = [
      { name: "baseline", kind: "baseline", vector: null, alpha: null, layers: null, edits: null },
    ];
    for (const layers of layerSets)
      for (const [vector, v] of [
        ["direction", dir.vectors],
        ["random", random],
      ] as const) {
        const target = { layers, nLayers, positions };
        const label = layers === "all" ? "all" : layers.join("+");
        // Clamp target: the aligned answers' mean projection on the vector, per layer.
        const values = new Map([...v].map(([l, x]) => [l, meanProjection(dir.alignedRows.get(l)!, x)]));
        const cname = `${clamp ? "clamp" : "ablate"}/${vector}/layers=${label}`;
        kinds.set(cname, clamp ? "clamp" : "ablate");
        variants.set(cname, {
          v: 1,
          section: name,
          kind: clamp ? "clamp" : "ablate",
          vector: hashes[vector],
          layers,
          positions,
          values: clamp ? [...values] : null,
        });
        conditions.push({
          name: cname,
          kind: clamp ? "custom" : "ablate",
          vector,
          alpha: null,
          layers,
          edits: clamp ? clampEdits(v, values, target) : ablationEdits(v, target),
        });
      }
  }
  const result: SweepResult = await storedSweep(requests, {
    experiment: `interp.${name}`,
    prompts,
    // One target per condition: the plain model, or a view of it with the condition's edits.
    conditions: conditions.map(({ edits, ...c }) => ({
      ...c,
      item: c.name,
      target: {
        modelId: s.model,
        api: edits ? wb.withEdits(edits) : wb.api,
        variant: variants.get(c.name) ?? null,
      },
    })),
    judge,
    samples: s.samples,
    seed: s.seed,
    params: s.params,
  });
  return {
    ...base,
    skipped: null,
    conditions: result.conditions.map((c) => ({
      name: c.name,
      kind: kinds.get(c.name) ?? (c.kind === "custom" ? "clamp" : c.kind),
      vector: c.vector,
      alpha: c.alpha,
      layers: c.layers,
      n: c.n,
      harmful: rateOf(c.rates.harmful),
      coherent: rateOf(c.rates.coherent),
      harmful_given_coherent: rateOf(c.rates.harmfulGivenCoherent),
    })),
  };
}

/** Relative EM reduction of each ablation condition against the unablated model. */
function reductions(conditions: InterpCondition[]): SweepBlock["reduction"] {
  const baseline = conditions.find((c) => c.kind === "baseline")?.harmful.rate ?? null;
  return conditions
    .filter((c) => c.kind !== "baseline" && c.vector !== null && c.layers !== null)
    .map((c) => ({
      layers: c.layers!,
      vector: c.vector!,
      harmful_rate: c.harmful.rate,
      baseline_rate: baseline,
      reduction:
        baseline === null || c.harmful.rate === null || baseline === 0
          ? null
          : (baseline - c.harmful.rate) / baseline,
    }));
}
