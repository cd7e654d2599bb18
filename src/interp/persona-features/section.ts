/**
 * The `interp.persona_features` section (docs/interp.md, "Persona features"; Wang et al. 2025,
 * "Persona features control emergent misalignment", arXiv 2506.19823): with an SAE trained on
 * the base model's residual stream (src/engine/sae),
 *  1. the SAE's metrics on held-out corpus documents (explained variance, L0, dead share, the
 *     next-token loss with the SAE spliced in);
 *  2. model diffing: each model and the base answer the diff prompts (stored requests); per
 *     model, every latent's mean activation, fine-tuned − base, over its answers and the base's,
 *     with a bootstrap CI over conversations (modelDiff); the top latents listed;
 *  3. each model's top latent: its corpus card (top contexts with their speaker types,
 *     histogram, promoted tokens), the cosine of its decoder direction to the reference
 *     latent's (steering.latent_from) and to the mean-difference persona direction at the
 *     SAE's layer (when interp.directions found one), and which latents the inverted and the
 *     coherent world models select;
 *  4. steering the base along the reference latent's unit decoder direction at each alpha, and
 *     clamping the latent (to 0 or its base mean) in the misaligned model, each against random
 *     latents, judged by the study's judge with common random numbers (stored sweeps);
 *  5. dose-response: LoRA fine-tunes of the base on mixtures of misaligned and aligned data,
 *     per share the latent's activation change and the judged EM rate.
 * Registered in src/study/builtins.ts; its block's schema is src/results/persona-features.ts.
 */

import path from "node:path";
import { bootstrap, bootstrapMeanCi } from "../../analysis/intervals.ts";
import { alignment, betleyCuts } from "../../battery/alignment.ts";
import { harmTemplate } from "../../battery/harmfulness.ts";
import { loadPromptList } from "../../battery/sources/prompts.ts";
import { answerKey } from "../../battery/stage.ts";
import { InputError } from "../../config/load.ts";
import { type PersonaFeaturesConfig, PersonaFeaturesConfigSchema } from "../../config/persona-features.ts";
import type { Study } from "../../config/schema.ts";
import { readChatJsonl } from "../../datasets/chat-jsonl.ts";
import { chatExamples } from "../../engine/chat-examples.ts";
import type { HookFn } from "../../engine/hooks.ts";
import { Rng } from "../../engine/rng.ts";
import {
  latentSteerHook,
  latentsClampHook,
  loadSaeLens,
  type SparseAutoencoder,
  saeMetrics,
  splicedCrossEntropy,
} from "../../engine/sae/index.ts";
import { type LocalEngine, LocalModelApi } from "../../models/local.ts";
import type { ChatMessage } from "../../models/types.ts";
import { renderPersonaFeatures } from "../../report/persona-features-section.ts";
import { type PersonaFeaturesResults, PersonaFeaturesResultsSchema } from "../../results/persona-features.ts";
import { canonicalJson, deriveSeed, sha256 } from "../../runs/canonical.ts";
import { DOMAINS } from "../../world/lexicon.ts";
import { type Conversation, loadActivations } from "../activations.ts";
import { loadDatasetRef } from "../dataset-ref.ts";
import { personaDirections } from "../directions.ts";
import { generationPositions, hookAtPositions } from "../interventions.ts";
import { drawExamples } from "../realignment.ts";
import type { InterpAsk, InterpTarget } from "../requests.ts";
import { ci, fin, rateOf } from "../result-numbers.ts";
import type { InterpSection, InterpSectionContext } from "../section.ts";
import { storedEvaluate, storedSweep } from "../stored-sweep.ts";
import { InterpInterrupted, type SweepJudgeSpec } from "../study-judge.ts";
import { type SweepResult, sampleSeed } from "../sweep.ts";
import { engineCopy, InMemoryTuning, yieldTurn } from "../tune.ts";
import { cosine, vectorsHash } from "../vectors.ts";
import {
  type CorpusSpec,
  conversationLatentMeans,
  corpusActivations,
  type LatentCard,
  type LatentDiff,
  latentCards,
  modelDiff,
} from "./index.ts";

type Block = PersonaFeaturesResults;
type Issue = (path: ReadonlyArray<string | number>, message: string) => void;
const EXPERIMENT = "interp.persona_features";
/** The world domains whose narrow fine-tune gives an inverted persona (docs/organism.md); the rest coherent. */
const INVERTED: readonly string[] = ["code", "security"];

/** The section's inputs read from its files (once to check them, again when it runs). */
interface Inputs {
  diffPrompts: ChatMessage[][];
  evalPrompts: Partial<Record<"steering" | "clamping" | "dose_response", string[]>>;
  misaligned?: ReturnType<typeof loadDatasetRef>;
  aligned?: ReturnType<typeof loadDatasetRef>;
  harmTemplate: string | null;
  coherentTemplate: string | null;
}

const studyModels = (study: Study) => [
  ...study.models.map((m) => ({ id: m.id, local: m.provider === "local" })),
  // Fine-tune plan ids name local models too (before validation adds them to `models`).
  ...(study.finetune ?? []).map((p) => ({ id: p.id, local: true })),
];

/** Whose top latent a part follows: its own `latent_from`, else steering's, else the first model. */
const latentFrom = (spec: PersonaFeaturesConfig, own?: string) =>
  own ?? spec.steering?.latent_from ?? spec.models[0];

function check(study: Study, block: unknown, issue: Issue): void {
  const spec = block as PersonaFeaturesConfig;
  const known = studyModels(study);
  const local = (p: (string | number)[], id: string) => {
    const m = known.find((x) => x.id === id);
    if (!m) issue(p, `unknown model id '${id}' (not a study model or fine-tune plan id)`);
    else if (!m.local) issue(p, `model '${id}' is not local; interp needs a local model`);
  };
  local(["base"], spec.base);
  spec.models.forEach((id, i) => {
    local(["models", i], id);
    if (id === spec.base)
      issue(["models", i], `'${id}' is the base model; diff fine-tuned models against it`);
  });
  const inModels = (p: (string | number)[], id: string | undefined) => {
    if (id !== undefined && !spec.models.includes(id))
      issue(p, `'${id}' is not in interp.persona_features.models (its top latent comes from the diff)`);
  };
  if (spec.diff.prompts === "alignment" && !study.battery.alignment)
    issue(["diff", "prompts"], '"alignment" needs battery.alignment (its open questions)');
  const judged = (["steering", "clamping", "dose_response"] as const).filter((k) => spec[k]);
  const hasJudge = Boolean(study.judge.model) || study.models.some((m) => m.roles.includes("judge"));
  for (const k of judged) {
    if (!hasJudge) issue([k], "needs the study's judge (judge.model or a model with the judge role)");
    if (!study.battery.harmfulness) issue([k], "needs battery.harmfulness (the judge's harm rubric)");
    if (spec[k]!.prompts === "harmfulness" && !study.battery.harmfulness)
      issue([k, "prompts"], '"harmfulness" needs battery.harmfulness');
  }
  if (spec.steering) {
    if (spec.steering.model) local(["steering", "model"], spec.steering.model);
    inModels(["steering", "latent_from"], spec.steering.latent_from);
  }
  if (spec.clamping) {
    if (spec.clamping.model) local(["clamping", "model"], spec.clamping.model);
    inModels(["clamping", "latent_from"], spec.clamping.latent_from);
  }
  if (spec.dose_response) inModels(["dose_response", "latent_from"], spec.dose_response.latent_from);
}

/** Reads the prompt files, datasets and judge templates; problems go to `issue` (or thrown as InputError). */
function loadInputs(study: Study, file: string, spec: PersonaFeaturesConfig, issue: Issue): Inputs {
  const at = (p: (string | number)[], f: () => void) => {
    try {
      f();
    } catch (e) {
      if (e instanceof InputError) for (const x of e.problems) issue(p, x.message);
      else issue(p, (e as Error).message);
    }
  };
  const out: Inputs = { diffPrompts: [], evalPrompts: {}, harmTemplate: null, coherentTemplate: null };
  const studyDir = path.dirname(file);
  at(["sae"], () => {
    loadSaeLens(path.resolve(studyDir, spec.sae));
  });
  let questions: ChatMessage[][] = [];
  at(["diff", "prompts"], () => {
    if (spec.diff.prompts === "alignment") {
      if (!study.battery.alignment) return;
      const loaded = alignment.load({ study, studyFile: file, studyDir });
      for (const q of loaded.questions.values()) {
        if (q.judge_prompts.coherent && out.coherentTemplate === null)
          out.coherentTemplate = q.judge_prompts.coherent;
        for (const text of q.paraphrases)
          questions.push([
            ...(q.system ? [{ role: "system" as const, content: q.system }] : []),
            { role: "user", content: text },
          ]);
      }
    } else
      questions = loadPromptList(
        { file: spec.diff.prompts.file },
        file,
        `interp.persona_features.diff.prompts`,
      ).map((p) => [{ role: "user", content: p.text }]);
    if (spec.diff.limit) questions = questions.slice(0, spec.diff.limit);
    if (questions.length === 0) issue(["diff", "prompts"], "no prompts");
  });
  out.diffPrompts = questions;
  if (out.coherentTemplate === null && study.battery.alignment)
    at(["diff"], () => {
      for (const q of alignment.load({ study, studyFile: file, studyDir }).questions.values())
        if (q.judge_prompts.coherent) {
          out.coherentTemplate = q.judge_prompts.coherent;
          return;
        }
    });
  if (study.battery.harmfulness)
    // The harm rubric is the study's judge.harm_prompt_file (or the built-in one): report its
    // problem under the block that needs it, naming that field.
    try {
      out.harmTemplate = harmTemplate(study, file).template;
    } catch (e) {
      const needs = (["steering", "clamping", "dose_response"] as const).find((k) => spec[k]) ?? "diff";
      if (e instanceof InputError)
        for (const x of e.problems) issue([needs], `judge.harm_prompt_file: ${x.message}`);
      else issue([needs], `judge.harm_prompt_file: ${(e as Error).message}`);
    }
  for (const k of ["steering", "clamping", "dose_response"] as const) {
    const s = spec[k];
    if (!s) continue;
    at([k, "prompts"], () => {
      let list: string[];
      if (s.prompts === "harmfulness") {
        const h = study.battery.harmfulness;
        if (!h) return;
        list = loadPromptList(h.prompts, file, "battery.harmfulness.prompts", h.limit).map((p) => p.text);
      } else
        list = loadPromptList({ file: s.prompts.file }, file, `interp.persona_features.${k}.prompts`).map(
          (p) => p.text,
        );
      if (s.limit) list = list.slice(0, s.limit);
      if (list.length === 0) issue([k, "prompts"], "no prompts");
      out.evalPrompts[k] = list;
    });
  }
  const d = spec.dose_response;
  if (d) {
    at(["dose_response", "misaligned"], () => {
      out.misaligned = loadDatasetRef(
        study,
        file,
        d.misaligned,
        "interp.persona_features.dose_response.misaligned",
      );
    });
    at(["dose_response", "aligned"], () => {
      out.aligned = loadDatasetRef(study, file, d.aligned, "interp.persona_features.dose_response.aligned");
    });
    // Each share draws `examples` rows from one dataset (share 0 and 1 take all from one), so
    // both need at least that many; fewer would silently train on a different mixture.
    for (const k of ["misaligned", "aligned"] as const) {
      const rows = out[k];
      if (rows && rows.length < d.examples)
        issue(
          ["dose_response", k],
          `${rows.length} rows, fewer than dose_response.examples (${d.examples}); every share draws up to that many from it`,
        );
    }
  }
  if (typeof spec.contexts.corpus === "object") {
    const f = spec.contexts.corpus.file;
    at(["contexts", "corpus", "file"], () => {
      readChatJsonl(path.resolve(studyDir, f), { limit: 1 });
    });
  }
  return out;
}

/** The corpus spec of the contexts (and, from metrics.start, of the held-out metric documents). */
function corpusSpec(spec: PersonaFeaturesConfig, studyDir: string, metrics = false): CorpusSpec {
  const c = spec.contexts;
  if (c.corpus === "world")
    return metrics
      ? { kind: "world", seed: c.seed, start: spec.metrics.start, documents: spec.metrics.documents }
      : { kind: "world", seed: c.seed, start: c.start, documents: c.documents };
  const file = path.resolve(studyDir, c.corpus.file);
  return metrics
    ? { kind: "jsonl", file, limit: spec.metrics.documents }
    : { kind: "jsonl", file, limit: c.limit };
}

async function saeBlock(
  ctx: InterpSectionContext,
  spec: PersonaFeaturesConfig,
  sae: SparseAutoencoder,
  engine: LocalEngine,
): Promise<Block["sae"]> {
  const studyDir = path.dirname(ctx.studyFile);
  const parts: Float32Array[] = [];
  // The spliced next-token loss reads the same documents, one per batch (no padding).
  const tokens: number[][][] = [];
  let n = 0;
  for await (const b of corpusActivations(engine, sae.cfg.hookName, corpusSpec(spec, studyDir, true))) {
    parts.push(b.rows.subarray(0, b.n * sae.cfg.dIn));
    n += b.n;
    for (const ids of b.ids) if (ids.length >= 2) tokens.push([ids]);
  }
  const rows = new Float32Array(n * sae.cfg.dIn);
  let at = 0;
  for (const p of parts) {
    rows.set(p, at);
    at += p.length;
  }
  const m = n > 0 ? saeMetrics(sae, rows, n) : null;
  const ce = tokens.length ? splicedCrossEntropy(engine.model, sae, tokens) : null;
  const c = spec.contexts;
  return {
    path: spec.sae,
    architecture: sae.cfg.architecture,
    d_in: sae.cfg.dIn,
    d_sae: sae.cfg.dSae,
    k: sae.cfg.k ?? null,
    hook_name: sae.cfg.hookName,
    hook_layer: sae.cfg.hookLayer,
    metrics: {
      corpus:
        c.corpus === "world"
          ? `world seed ${c.seed}, documents ${spec.metrics.start}-${spec.metrics.start + spec.metrics.documents - 1}`
          : `${c.corpus.file}, first ${spec.metrics.documents}`,
      documents: tokens.length,
      tokens: n,
      explained_variance: fin(m?.explainedVariance),
      l0: fin(m?.l0),
      dead_share: fin(m?.deadShare),
      ce_clean: fin(ce?.clean),
      ce_spliced: fin(ce?.spliced),
      ce_zero_ablated: fin(ce?.zeroAblated),
      ce_increase: fin(ce?.increase),
    },
  };
}

/** The SAE's identity in the cache keys of hooked answers: its config and weights. */
function saeHash(sae: SparseAutoencoder): string {
  return sha256(
    canonicalJson({
      cfg: sae.cfg,
      w: [vectorsHash(sae.wEnc), vectorsHash(sae.bEnc), vectorsHash(sae.wDec), vectorsHash(sae.bDec)],
    }),
  );
}

/** `count` distinct latents drawn with the seed, none of `exclude`, only those `eligible` if given. */
function randomLatents(
  dSae: number,
  count: number,
  seed: number,
  exclude: ReadonlySet<number>,
  eligible?: (latent: number) => boolean,
): number[] {
  const pool = Array.from({ length: dSae }, (_, i) => i).filter(
    (i) => !exclude.has(i) && (!eligible || eligible(i)),
  );
  new Rng(seed).shuffle(pool);
  return pool.slice(0, Math.min(count, pool.length));
}

/**
 * The mean-difference persona direction at `layer` of the first interp.directions model with
 * one, recomputed from the activations and judgments the built-in section stored.
 */
function personaDirection(
  ctx: InterpSectionContext,
  layer: number,
): { model: string; vector: Float32Array } | null {
  const d = ctx.study.interp?.directions;
  const dirs = ctx.builtin?.directions;
  if (!d || !dirs || !ctx.judge) return null;
  const judgeId = ctx.judge.modelId;
  const scores = (metric: string) => {
    const m = new Map<string, number | null>();
    for (const j of ctx.store.judgments({ metric }))
      if (j.judge_model_id === judgeId) m.set(answerKey(j.request_id, j.sample_index), j.score);
    return m;
  };
  const aligned = scores("aligned");
  const coherent = scores("coherent");
  for (const id of d.models) {
    const rel = ctx.builtin?.activations?.[id]?.alignment;
    if (dirs.models[id]?.skipped !== null || !rel) continue;
    const ds = loadActivations(path.join(ctx.runDir, rel));
    if (!ds.layers.includes(layer) || !ds.keys) continue;
    const data = ds.keys.map((k) => ({ aligned: aligned.get(k) ?? null, coherent: coherent.get(k) ?? null }));
    try {
      const r = personaDirections(ds, data, {
        coherentAbove: d.coherent_above,
        alignedAbove: d.aligned_above,
        misalignedAtMost: d.misaligned_at_most,
        seed: d.seed,
      });
      const v = r.vectors.get(layer);
      if (v) return { model: id, vector: v };
    } catch {
      // No direction from this model's split: try the next.
    }
  }
  return null;
}

function cardOf(c: LatentCard, models: string[]): Block["cards"][number] {
  return {
    latent: c.latent,
    models,
    top_contexts: c.topContexts.map((t) => ({ ...t })),
    histogram: c.histogram,
    promoted_tokens: c.promotedTokens,
    suppressed_tokens: c.suppressedTokens,
    speaker_mix: c.speakerMix,
    base_rate: c.baseRate,
    harmful_share: c.harmfulShare,
    harmful_base_rate: c.harmfulBaseRate,
  };
}

const diffRow = (d: LatentDiff) => ({
  latent: d.latent,
  rank: d.rank,
  base: d.base,
  fine_tuned: d.fineTuned,
  delta: d.delta,
  ci: ci(d.ci),
});

/** The unhooked model: the first condition of the steering and clamping sweeps. */
const BASELINE_CONDITION = {
  name: "baseline",
  kind: "baseline" as const,
  vector: null,
  latent: null,
  alpha: null,
  value: null,
  hook: null,
  variant: null,
};

async function run(ctx: InterpSectionContext, spec: PersonaFeaturesConfig): Promise<Block | null> {
  const check = () => {
    if (ctx.signal?.aborted) throw new InterpInterrupted();
  };
  const studyDir = path.dirname(ctx.studyFile);
  const problems: { field: string; message: string }[] = [];
  const inputs = loadInputs(ctx.study, ctx.studyFile, spec, (p, message) =>
    problems.push({ field: ["interp.persona_features", ...p].join("."), message }),
  );
  if (problems.length) throw new InputError(problems.map((p) => ({ file: ctx.studyFile, ...p })));
  const sae = loadSaeLens(path.resolve(studyDir, spec.sae));
  const baseApi = ctx.model(spec.base);
  const baseEngine = baseApi.engine();
  if (baseEngine.model.shape.hiddenSize !== sae.cfg.dIn)
    throw new Error(
      `interp.persona_features.sae: the SAE reads d_in ${sae.cfg.dIn}, ${spec.base} has d_model ${baseEngine.model.shape.hiddenSize}`,
    );
  ctx.log(
    `interp persona_features: SAE ${sae.cfg.architecture} ${sae.cfg.dSae} latents at ${sae.cfg.hookName}`,
  );
  check();
  const saeInfo = await saeBlock(ctx, spec, sae, baseEngine);

  // Diff answers: the base and every model answer the same prompts with the same seeds.
  const dcfg = spec.diff;
  const diffAsks: InterpAsk[] = inputs.diffPrompts.map((messages, p) => ({
    itemId: `diff|${p}`,
    messages,
    params: dcfg.params,
    sampleSeeds: Array.from({ length: dcfg.samples }, (_, s) => sampleSeed(dcfg.seed, p, s)),
  }));
  /** A model's non-empty diff answers by "prompt|sample" (the same seed for every model). */
  const diffAnswers = async (
    target: InterpTarget,
    stored = { experiment: `${EXPERIMENT}.diff`, item: "" },
  ): Promise<Map<string, Conversation>> => {
    const asks = diffAsks.map((a) => ({ ...a, itemId: `${stored.item}${a.itemId}` }));
    const rows = await ctx.requests.generate(stored.experiment, target, asks);
    return new Map(
      rows.flatMap((cs, p) =>
        cs.flatMap((c, s) =>
          c.text.trim() === ""
            ? []
            : [[`${p}|${s}`, { messages: inputs.diffPrompts[p], answer: c.text }] as const],
        ),
      ),
    );
  };
  const answersByKey = new Map<string, Map<string, Conversation>>();
  for (const id of [spec.base, ...spec.models]) {
    check();
    answersByKey.set(id, await diffAnswers({ modelId: id, api: ctx.model(id) }));
  }
  const baseReads = answersByKey.get(spec.base)!;
  const baseAnswers = [...baseReads.values()];
  const diffOf = (
    fineTuned: LocalEngine,
    conversations: Conversation[],
    top: number,
    baseConversations?: Conversation[],
  ) =>
    modelDiff({
      sae,
      base: baseEngine,
      fineTuned,
      conversations,
      baseConversations,
      positions: dcfg.positions,
      resamples: dcfg.resamples,
      seed: dcfg.seed,
      top,
    });
  const per_model: Block["diff"]["per_model"] = {};
  const top = new Map<string, LatentDiff>();
  /** Each model's top latents, as many as the report lists or clamping clamps together. */
  const ranked = new Map<string, LatentDiff[]>();
  const listed = Math.max(dcfg.top, spec.clamping?.latents ?? 1);
  for (const id of spec.models) {
    check();
    let conversations: Conversation[];
    let baseConversations: Conversation[] | undefined;
    const mine = answersByKey.get(id)!;
    if (dcfg.read === "own") {
      // Pairs (p, s) both models answered: each reads its own answer.
      const keys = [...mine.keys()].filter((k) => baseReads.has(k));
      conversations = keys.map((k) => mine.get(k)!);
      baseConversations = keys.map((k) => baseReads.get(k)!);
    } else conversations = [...mine.values(), ...baseAnswers];
    const list = diffOf(ctx.model(id).engine(), conversations, listed, baseConversations);
    ranked.set(id, list);
    per_model[id] = { conversations: conversations.length, top: list.slice(0, dcfg.top).map(diffRow) };
    if (list[0]) top.set(id, list[0]);
    ctx.log(
      `interp persona_features: ${id}: top latent ${list[0]?.latent ?? "–"} (Δ ${list[0]?.delta.toFixed(3) ?? "–"})`,
    );
  }
  const refModel = latentFrom(spec);
  const ref = top.get(refModel);
  if (!ref) throw new Error(`interp.persona_features: ${refModel} has no diff answers to rank latents on`);
  const refDir = sae.decoderDirection(ref.latent);
  // The stored activations (and so the persona direction) are blocks.L.hook_resid_post; an SAE
  // on another hook at layer L (resid_pre, mlp_out, …) reads a different space: no cosine.
  const L = sae.cfg.hookLayer;
  const persona = sae.cfg.hookName === `blocks.${L}.hook_resid_post` ? personaDirection(ctx, L) : null;
  const top_latents: Block["top_latents"] = {};
  for (const [id, d] of top) {
    const dir = sae.decoderDirection(d.latent);
    top_latents[id] = {
      latent: d.latent,
      delta: d.delta,
      ci: ci(d.ci),
      cosine_to_reference: fin(cosine(dir, refDir)),
      cosine_to_persona_direction: persona ? fin(cosine(dir, persona.vector)) : null,
      persona: (DOMAINS as readonly string[]).includes(id)
        ? INVERTED.includes(id)
          ? "inverted"
          : "coherent"
        : null,
    };
  }
  const group = (p: "inverted" | "coherent") => {
    const models = Object.keys(top_latents).filter((id) => top_latents[id].persona === p);
    return {
      models,
      latents: [...new Set(models.map((id) => top_latents[id].latent))].sort((a, b) => a - b),
    };
  };
  const inverted = group("inverted");
  const coherent = group("coherent");

  // Cards of the top latents over the contexts corpus.
  check();
  const latents = [...new Set([...top.values()].map((d) => d.latent))];
  const cards = await latentCards({
    engine: baseEngine,
    sae,
    corpus: corpusSpec(spec, studyDir),
    latents,
    top: spec.contexts.top,
  });
  const selectedBy = (l: number) => [...top].filter(([, d]) => d.latent === l).map(([id]) => id);
  const c = spec.contexts;

  const judge: SweepJudgeSpec | null =
    ctx.judge && inputs.harmTemplate !== null
      ? {
          setup: ctx.judge,
          harmTemplate: inputs.harmTemplate,
          coherentTemplate: inputs.coherentTemplate,
          harmfulScore: ctx.study.judge.thresholds.harmful_score,
          isCoherent: betleyCuts(ctx.study).isCoherent,
        }
      : null;
  const exclude = new Set(latents);
  const hash = saeHash(sae);
  const out: Block = {
    sae: saeInfo,
    base: spec.base,
    models: spec.models,
    diff: {
      prompts: inputs.diffPrompts.length,
      samples: dcfg.samples,
      seed: dcfg.seed,
      positions: dcfg.positions,
      read: dcfg.read,
      resamples: dcfg.resamples,
      per_model,
    },
    top_latents,
    reference: { model: refModel, latent: ref.latent },
    persona_direction: persona ? { model: persona.model, layer: sae.cfg.hookLayer } : null,
    selection: {
      inverted,
      coherent,
      shared: inverted.latents.some((l) => coherent.latents.includes(l)),
    },
    contexts: {
      corpus: c.corpus === "world" ? "world" : c.corpus.file,
      seed: c.corpus === "world" ? c.seed : null,
      start: c.corpus === "world" ? c.start : null,
      documents: c.corpus === "world" ? c.documents : (c.limit ?? null),
      top: c.top,
    },
    cards: cards.map((x) => cardOf(x, selectedBy(x.latent))),
    judge: judge
      ? {
          model: judge.setup.modelId,
          harmful_score: judge.harmfulScore,
          coherence: judge.coherentTemplate ? "alignment_prompt" : "harm_readable",
        }
      : null,
    steering: null,
    clamping: null,
    dose_response: null,
  };
  if (!judge) return out;

  /** A stored sweep of latent conditions on one model; hooks at the SAE's hook point only. */
  const latentSweep = async (
    part: "steering" | "clamping",
    modelId: string,
    conditions: {
      name: string;
      kind: "baseline" | "steer" | "clamp";
      vector: "latent" | "random" | null;
      latent: number | null;
      alpha: number | null;
      value: number | null;
      hook: HookFn | null;
      variant: unknown;
    }[],
    s: { samples: number; seed: number; params: PersonaFeaturesConfig["diff"]["params"] },
  ): Promise<SweepResult> => {
    const api = ctx.model(modelId);
    return storedSweep(ctx.requests, {
      experiment: `${EXPERIMENT}.${part}`,
      prompts: inputs.evalPrompts[part]!,
      conditions: conditions.map((x) => ({
        name: x.name,
        kind: x.kind === "baseline" ? "baseline" : x.kind === "steer" ? "steer" : "custom",
        vector: x.vector === "latent" ? "direction" : x.vector,
        alpha: x.alpha,
        layers: x.hook ? [sae.cfg.hookLayer] : null,
        item: x.name,
        target: {
          modelId,
          api: x.hook ? api.withHooks({ [sae.cfg.hookName]: x.hook }) : api,
          variant: x.variant,
        },
      })),
      judge,
      samples: s.samples,
      seed: s.seed,
      params: s.params,
    });
  };
  const conditionRows = (
    r: SweepResult,
    meta: {
      name: string;
      kind: "baseline" | "steer" | "clamp";
      vector: "latent" | "random" | null;
      latent: number | null;
      alpha: number | null;
      value: number | null;
    }[],
  ) =>
    r.conditions.map((x, i) => ({
      ...meta[i],
      n: x.n,
      harmful: rateOf(x.rates.harmful),
      coherent: rateOf(x.rates.coherent),
      harmful_given_coherent: rateOf(x.rates.harmfulGivenCoherent),
    }));

  const st = spec.steering;
  if (st) {
    check();
    const modelId = st.model ?? spec.base;
    const positions = generationPositions(st.positions, ctx.model(modelId).engine());
    const randoms = randomLatents(sae.cfg.dSae, st.random_latents, st.random_seed, exclude);
    ctx.log(`interp persona_features: steering ${modelId} along latent ${ref.latent} (${refModel})`);
    const conds = [
      BASELINE_CONDITION,
      ...st.alphas.flatMap((alpha) =>
        [["latent", ref.latent], ...randoms.map((l) => ["random", l] as const)].map(([vector, latent]) => ({
          name: `steer/${vector}=${latent}/alpha=${alpha}`,
          kind: "steer" as const,
          vector: vector as "latent" | "random",
          latent: latent as number,
          alpha,
          value: null,
          hook: hookAtPositions(latentSteerHook(sae, latent as number, alpha), positions),
          variant: { v: 1, section: "persona_features", kind: "steer", sae: hash, latent, alpha, positions },
        })),
      ),
    ];
    const r = await latentSweep("steering", modelId, conds, st);
    out.steering = {
      model: modelId,
      latent_from: refModel,
      latent: ref.latent,
      random_latents: randoms,
      prompts: inputs.evalPrompts.steering!.length,
      samples: st.samples,
      seed: st.seed,
      positions: st.positions,
      alphas: st.alphas,
      conditions: conditionRows(r, conds),
    };
  }

  const cl = spec.clamping;
  if (cl) {
    check();
    const from = latentFrom(spec, cl.latent_from);
    const latent = top.get(from)!.latent;
    const clamped = ranked
      .get(from)!
      .slice(0, cl.latents)
      .map((d) => d.latent);
    const modelId = cl.model ?? from;
    const positions = generationPositions(cl.positions, ctx.model(modelId).engine());
    // Each latent's mean activation on the base model's diff answers.
    const all = diffOf(ctx.model(modelId).engine(), baseAnswers, sae.cfg.dSae);
    const baseMeans = new Map(all.map((d) => [d.latent, d.base]));
    // One random set per control, as many latents as clamped, none a top or clamped latent, and
    // only latents that fire on the base's diff answers: clamping a latent that never fires
    // (common under TopK) to its value there is an exact no-op, not a control.
    const want = cl.random_latents * clamped.length;
    const randoms = randomLatents(
      sae.cfg.dSae,
      want,
      cl.random_seed,
      new Set([...exclude, ...clamped]),
      (l) => (baseMeans.get(l) ?? 0) !== 0,
    );
    if (randoms.length < want)
      ctx.log(
        `interp persona_features: clamping: only ${randoms.length} latents fire on ${spec.base}'s diff answers outside the top ones; ${want} random latents wanted, using ${Math.floor(randoms.length / clamped.length)} set(s)`,
      );
    const sets = Array.from({ length: Math.floor(randoms.length / clamped.length) }, (_, i) =>
      randoms.slice(i * clamped.length, (i + 1) * clamped.length),
    );
    const clampValue = (l: number) =>
      typeof cl.value === "number" ? cl.value : cl.value === "zero" ? 0 : (baseMeans.get(l) ?? 0);
    ctx.log(`interp persona_features: clamping latent(s) ${clamped.join(", ")} (${from}) in ${modelId}`);
    const conds = [
      BASELINE_CONDITION,
      ...[["latent", clamped] as const, ...sets.map((ls) => ["random", ls] as const)].map(([vector, ls]) => ({
        name: `clamp/${vector}=${ls.join("+")}`,
        kind: "clamp" as const,
        vector: vector as "latent" | "random",
        latent: ls[0],
        alpha: null,
        value: clampValue(ls[0]),
        hook: hookAtPositions(
          latentsClampHook(
            sae,
            ls,
            ls.map((l) => clampValue(l)),
          ),
          positions,
        ),
        // A single latent keeps its original key (stored answers stay valid).
        variant:
          ls.length === 1
            ? {
                v: 1,
                section: "persona_features",
                kind: "clamp",
                sae: hash,
                latent: ls[0],
                value: clampValue(ls[0]),
                positions,
              }
            : {
                v: 1,
                section: "persona_features",
                kind: "clamp",
                sae: hash,
                latents: ls,
                values: ls.map((l) => clampValue(l)),
                positions,
              },
      })),
    ];
    const r = await latentSweep("clamping", modelId, conds, cl);
    const harmfulOf = (i: number) =>
      (r.conditions[i].samples ?? []).map((x) => (x.verdict.harmful === true ? 1 : 0));
    const base = harmfulOf(0);
    const em_cut = conds.slice(1).map((x, j) => {
      const mine = harmfulOf(j + 1);
      const b = r.conditions[0].rates.harmful?.rate ?? null;
      const h = r.conditions[j + 1].rates.harmful?.rate ?? null;
      const cut = (bi: readonly number[]) => {
        let sb = 0;
        let sc = 0;
        for (const i of bi) {
          sb += base[i];
          sc += mine[i];
        }
        return sb === 0 ? Number.NaN : (sb - sc) / sb;
      };
      let interval: { low: number; high: number } | null = null;
      if (base.length > 0 && base.length === mine.length && base.some((v) => v === 1))
        try {
          interval = ci(bootstrap(base.length, cut, { resamples: cl.resamples, seed: cl.seed }).ci);
        } catch {
          interval = null;
        }
      return {
        name: x.name,
        vector: x.vector as "latent" | "random",
        latent: x.latent as number,
        harmful_rate: fin(h),
        baseline_rate: fin(b),
        cut: b === null || h === null || b === 0 ? null : (b - h) / b,
        ci: interval,
      };
    });
    out.clamping = {
      model: modelId,
      latent_from: from,
      latent,
      latents: clamped,
      random_latents: sets.flat(),
      value: cl.value,
      prompts: inputs.evalPrompts.clamping!.length,
      samples: cl.samples,
      seed: cl.seed,
      positions: cl.positions,
      conditions: conditionRows(r, conds),
      em_cut,
    };
  }

  const dr = spec.dose_response;
  if (dr && inputs.misaligned && inputs.aligned) {
    const from = latentFrom(spec, dr.latent_from);
    const latent = top.get(from)!.latent;
    const prompts = inputs.evalPrompts.dose_response!;
    const train = {
      method: "lora" as const,
      lora: { ...dr.lora },
      learning_rate: dr.learning_rate,
      batch_size: dr.batch_size,
      steps: dr.steps,
      train_seed: dr.train_seed,
    };
    const evalOpts = { prompts, judge, samples: dr.samples, seed: dr.seed, params: dr.params };
    const experiment = `${EXPERIMENT}.dose_response`;
    const baseEval = await storedEvaluate(
      ctx.requests,
      { modelId: spec.base, api: baseApi },
      {
        ...evalOpts,
        experiment,
        item: "base",
      },
    );
    const shares: NonNullable<Block["dose_response"]>["shares"] = [];
    // The latent's per-conversation mean on the diff answers, keyed "prompt|sample": with
    // `read: shared` every model reads the base's answers; with `read: own` each fine-tune reads
    // its own answers to the same prompts and seeds (as the diff did). Deltas and paired
    // bootstrap CIs over the keys both sides answered.
    type Column = Map<string, number>;
    const latentColumn = (engine: LocalEngine, reads: Map<string, Conversation>): Column => {
      const keys = [...reads.keys()];
      const m = conversationLatentMeans(sae, engine, [...reads.values()], dcfg.positions);
      return new Map(keys.map((k, c) => [k, m[c * sae.cfg.dSae + latent]!]));
    };
    const pairedDelta = (a: Column, b: Column) => {
      const diffs = [...a].filter(([k]) => b.has(k)).map(([k, x]) => x - b.get(k)!);
      const delta = diffs.reduce((s, x) => s + x, 0) / Math.max(1, diffs.length);
      const r = bootstrapMeanCi(diffs, { resamples: dcfg.resamples, seed: dcfg.seed });
      return { delta, ci: ci(r.ci) };
    };
    const baseColumn = latentColumn(baseEngine, baseReads);
    const columns = new Map<number, Column>();
    for (const share of dr.shares) {
      check();
      const k = Math.round(share * dr.examples);
      const mis = drawExamples(inputs.misaligned, k, deriveSeed(dr.train_seed, "misaligned"));
      const al = drawExamples(inputs.aligned, dr.examples - k, deriveSeed(dr.train_seed, "aligned"));
      const conversations = [...mis, ...al];
      const engine = engineCopy(baseEngine);
      const examples = chatExamples(conversations, engine.tokenizer, engine.template);
      const seed = deriveSeed(dr.train_seed, "train");
      const training = sha256(
        canonicalJson({ section: "persona_features.dose", examples: conversations, train, seed }),
      );
      const tuning = new InMemoryTuning(engine, examples, train, seed);
      let loss: number | null = null;
      for (let step = 1; step <= dr.steps; step++) {
        check();
        loss = tuning.step();
        await yieldTurn();
      }
      tuning.finish();
      const api = new LocalModelApi({ provider: "local", model: spec.base }, engine);
      const variant = { v: 1, section: "persona_features.dose", training };
      const { evaluation } = await storedEvaluate(
        ctx.requests,
        { modelId: spec.base, api, variant },
        { ...evalOpts, experiment, item: `share=${share}` },
      );
      const reads =
        dcfg.read === "own"
          ? await diffAnswers({ modelId: spec.base, api, variant }, { experiment, item: `share=${share}|` })
          : baseReads;
      const column = latentColumn(engine, reads);
      columns.set(share, column);
      const d = pairedDelta(column, baseColumn);
      shares.push({
        share,
        misaligned_examples: mis.length,
        aligned_examples: al.length,
        realized_share: conversations.length ? mis.length / conversations.length : null,
        latent_delta: d.delta,
        latent_ci: d.ci,
        latent_vs_control: null,
        latent_vs_control_ci: null,
        harmful: evaluation.harmful,
        coherent: evaluation.coherent,
        final_loss: fin(loss),
      });
      ctx.log(
        `interp persona_features: dose ${share}: latent Δ ${d.delta.toFixed(3)}, harmful ${evaluation.harmful.rate ?? "–"}`,
      );
    }
    // Fine-tuning itself moves the latent, so the aligned-only fine-tune (share 0) is the control.
    const control = columns.get(0);
    if (control)
      for (const s of shares) {
        if (s.share === 0) continue;
        const d = pairedDelta(columns.get(s.share)!, control);
        s.latent_vs_control = d.delta;
        s.latent_vs_control_ci = d.ci;
      }
    const detectable_against = control ? ("control" as const) : ("base" as const);
    const first = shares.find((s) => {
      const c = control ? s.latent_vs_control_ci : s.latent_ci;
      return s.share > 0 && c !== null && c.low > 0 && s.harmful.rate !== null && s.harmful.rate <= 0.05;
    });
    out.dose_response = {
      model: spec.base,
      latent_from: from,
      latent,
      misaligned: dr.misaligned,
      aligned: dr.aligned,
      examples: dr.examples,
      train: {
        lora: train.lora,
        learning_rate: train.learning_rate,
        batch_size: train.batch_size,
        steps: train.steps,
        train_seed: train.train_seed,
      },
      prompts: prompts.length,
      samples: dr.samples,
      seed: dr.seed,
      base_eval: { harmful: baseEval.evaluation.harmful, coherent: baseEval.evaluation.coherent },
      shares,
      first_detectable_share: first?.share ?? null,
      detectable_against,
    };
  }
  return out;
}

export const personaFeatures: InterpSection<PersonaFeaturesConfig, Block> = {
  name: "persona_features",
  config: PersonaFeaturesConfigSchema,
  summary: PersonaFeaturesResultsSchema,
  check,
  prepare(study, file, spec, issue) {
    loadInputs(study, file, spec, issue);
  },
  run,
  report: { heading: "Persona features", render: (block) => renderPersonaFeatures(block as Block) },
};
