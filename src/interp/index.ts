/**
 * emlab interp: white-box experiments on local engine models and, for probes, directions,
 * steering and ablation, on models served by an HF worker (docs/methods.md §3.7, §5-§7;
 * docs/worker.md).
 *
 * WHITE BOX (white-box.ts)
 *   WhiteBoxModel {api, layers(), collect(conversations, {layers?, position?}),
 *     generationPositions(mode), withEdits(edits)}: localWhiteBox(LocalModelApi),
 *     workerWhiteBox(hf-worker api), whiteBoxOf(api) -> WhiteBoxModel | null
 *
 * ACTIVATIONS (activations.ts)
 *   collectActivations(engine: {model, tokenizer, template}, conversations: {messages, answer}[],
 *     {layers?: number[] = all, position?: "answer_mean" | "last" = "answer_mean", batchSize? = 8})
 *     -> ActivationDataset { position, layers, dModel, rows: Map<layer, Float32Array[]>,
 *                            answerTokens: number[], labels?, keys? }
 *     Reads blocks.{l}.hook_resid_post with runWithCache (no grad), batches right-padded rows
 *     (exact for a causal model). "answer_mean" = mean over the answer's tokens (the last
 *     assistant turn's content, end marker excluded); "last" = the answer's last token.
 *   saveActivations(dir, ds) / loadActivations(dir): dir/activations.safetensors (tensor
 *     "layer.{l}": [count, dModel] F32) + dir/activations.json (ActivationIndexSchema:
 *     {format: "emlab.activations.v1", hook, position, layers, dModel, count, answerTokens,
 *     labels?, keys?, file}).
 *
 * PROBES (probes.ts; solver in l2-logistic.ts, AUC in auc.ts)
 *   fitProbe(rows, labels 0/1, {C = 1}) -> Probe {mean, scale, weights, intercept, direction (unit,
 *     original space), converged}: features standardised, L2 logistic as sklearn (½‖w‖² + C·Σ loss).
 *   probeLogits(probe, rows); evaluateProbe(probe, rows, labels) -> {accuracy, auc, correct}
 *   crossValidateProbe(rows, labels, {folds = 5, seed = 42, C, level = 0.95, resamples = 2000})
 *     -> ProbeCv {n, positives, folds, seed, C, accuracy (pooled out-of-fold), accuracyCi (Wilson),
 *                 auc (mean over folds), aucCi (bootstrap over folds), foldAccuracy[], foldAuc[]}
 *   probeLayers(ds, labels, cvOpts) -> ProbeLayerResult[] = ProbeCv & {layer, direction: number[]}
 *   probeCosine({rows, labels}, {rows, labels}, {seed = 42, resamples = 200, paired?})
 *     -> ProbeCosine {cosine, ci, resamples, used, paired}  (bootstrap refits both probes)
 *   probeTransferMatrix([{name, rows, labels}], cvOpts & {layer?})
 *     -> TransferMatrix {models, layer, accuracy[i][j], auc[i][j]}  (fit on i, test on j; diagonal = CV)
 *
 * DIRECTIONS (directions.ts; helpers in vectors.ts)
 *   splitPersonaSets(judgements: {aligned?, coherent?, label?}[], {coherentAbove = 50,
 *     alignedAbove = 70, misalignedAtMost = 30, seed = 0}) -> {aligned[], misaligned[] (equal size),
 *     availableAligned, availableMisaligned}
 *   meanDifference(alignedRows, misalignedRows) -> Float32Array  (mean(mis) − mean(al))
 *   personaDirections(ds, judgements, splitOpts) -> {split, vectors: Map<layer, Float32Array>}
 *   summarizeDirections(dirs) -> PersonaDirectionsSummary {count, availableAligned,
 *     availableMisaligned, layers: [{layer, norm}], cosineAcrossLayers[][]}
 *   cosineMatrix(vectors), cosineAcrossModels(mapA, mapB) -> [{layer, cosine}]
 *   meanProjection(rows, v) (a clamp target), randomDirection(d, length, seed),
 *   randomLike(vectorsByLayer, seed) (same norm per layer, seed + layer)
 *
 * INTERVENTIONS (interventions.ts) -> hook edits as data (src/models/hook-edits.ts: what the
 *   HF worker receives), and engine Hooks for generate / runWithHooks / withHooks
 *   steeringEdits / steeringHooks(v | Map<layer, v>, alpha, target)       x + alpha·v
 *   ablationEdits / ablationHooks(v | Map<layer, v>, target)              x − (x·û)û
 *   clampEdits / clampHooks(v | Map<layer, v>, value | Map<layer, value>, target)   component along û := value
 *   editsToHooks(edits) -> Hooks (the engine's one implementation of the edits)
 *   target = {layers: number | number[] | "all", nLayers?, point? = "hook_resid_post",
 *             positions? = "all" | "prompt" | {from: absPos} | {lastPromptTokens: k}}
 *   assistantHeaderTokens(engine) -> k such that {lastPromptTokens: k} edits from the assistant
 *     turn on during generation (organism 1, ChatML 3)
 *
 * SWEEPS (sweep.ts)
 *   sweepConditions({direction, randomSeed, alphas?, ablate?, layerSets, nLayers, positions?,
 *     baseline? = true}) -> SweepCondition[] (baseline, then per layer set: direction and random,
 *     each alpha, and ablation; each condition's `edits` as data)
 *   runSweep({model: LocalModelApi (HookableModel), prompts, conditions, judge: (q, a) =>
 *     {harmful, coherent, ...booleans}, samplesPerPrompt = 1, seed = 0, params, level, keepSamples})
 *     -> Promise<SweepResult> {seed, samplesPerPrompt, prompts, level, conditions: [{name, kind,
 *        vector, alpha, layers, n, rates: {harmful, coherent, ..., harmfulGivenCoherent:
 *        {count, n, rate, ci (Wilson)}}, samples?}]}
 *     Sample (prompt p, sample s) has the same seed under every condition.
 *
 * TRAINING INSIDE THE LOOP (tune.ts, model-eval.ts; the study sections in realignment.ts and
 * emergent-alignment.ts, documented in docs/interp.md)
 *   engineCopy(engine) -> LocalEngine with its own weights (the original is never changed)
 *   resolveTraining({method, lora, learning_rate?, batch_size?, train_seed}, steps) -> the
 *     settings with src/finetune's STAGE_DEFAULTS filled in
 *   new InMemoryTuning(engine, examples, settings, seed): step() -> loss, done, finish() (merges LoRA)
 *   evaluateBehaviour(model, {prompts, judge, samples, seed, params}) -> {evaluation: {harmful,
 *     coherent, harmful_given_coherent}, samples}  (one unhooked sweep condition)
 *   selfReport(model, decisionItems, {samples, seed, params}) -> share of misaligned picks (Wilson CI)
 *   projectionReadings(rowsByLayer, harmful[], directionsByLayer) -> [{layer, mean, mean_harmful,
 *     mean_safe, auc}]
 */
export {
  type ActivationDataset,
  type ActivationIndex,
  ActivationIndexSchema,
  type CollectOptions,
  type Conversation,
  collectActivations,
  loadActivations,
  type PositionMode,
  saveActivations,
  tokenizeConversation,
} from "./activations.ts";
export { rocAuc } from "./auc.ts";
export {
  cosineAcrossModels,
  cosineMatrix,
  meanDifference,
  meanProjection,
  type PersonaDirections,
  type PersonaDirectionsSummary,
  PersonaDirectionsSummarySchema,
  type PersonaJudgement,
  type PersonaSplit,
  type PersonaSplitOptions,
  personaDirections,
  randomDirection,
  randomLike,
  splitPersonaSets,
  summarizeDirections,
} from "./directions.ts";
export { projectionReadings } from "./emergent-alignment.ts";
export {
  ablationEdits,
  ablationHooks,
  assistantHeaderTokens,
  type BlockHookPoint,
  clampEdits,
  clampHooks,
  editsToHooks,
  type InterventionTarget,
  type LayerSpec,
  type PositionSpec,
  steeringEdits,
  steeringHooks,
  type VectorSpec,
} from "./interventions.ts";
export { fitL2Logistic, type L2LogisticFit, type L2LogisticOptions } from "./l2-logistic.ts";
export { type EvalOptions, evaluateBehaviour, selfReport } from "./model-eval.ts";
export {
  type CvOptions,
  crossValidateProbe,
  evaluateProbe,
  fitProbe,
  type LabelledRows,
  type Probe,
  type ProbeCosine,
  ProbeCosineSchema,
  type ProbeCv,
  ProbeCvSchema,
  type ProbeLayerResult,
  ProbeLayerResultSchema,
  type ProbeOptions,
  probeCosine,
  probeLayers,
  probeLogits,
  probeTransferMatrix,
  type TransferMatrix,
  TransferMatrixSchema,
} from "./probes.ts";
export { drawExamples } from "./realignment.ts";
export {
  type ConditionGrid,
  type HookableModel,
  type Rate,
  RateSchema,
  runSweep,
  type SweepCondition,
  type SweepJudge,
  type SweepJudgement,
  type SweepOptions,
  type SweepResult,
  SweepResultSchema,
  sampleSeed,
  sweepConditions,
} from "./sweep.ts";
export { engineCopy, InMemoryTuning, resolveTraining, type TuneConfig } from "./tune.ts";
export { cosine, dot, meanRows, norm, unit } from "./vectors.ts";
export { localWhiteBox, type WhiteBoxModel, whiteBoxOf, workerWhiteBox } from "./white-box.ts";
