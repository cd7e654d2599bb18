/**
 * The emergent-alignment loop (docs/methods.md §6): steer a private copy of a misaligned
 * model toward the aligned persona (alpha · v with v = mean(misaligned) − mean(aligned), so a
 * negative alpha), collect the steered model's coherent answers to the training prompts,
 * fine-tune the *unsteered* model on them, repeat. After each round (round 0 = before) the
 * unsteered model is evaluated: harmful and coherent rates on the evaluation prompts, the mean
 * projection of its answers' activations on the direction (the probe reading) and whether the
 * direction still separates its harmful from its safe answers (AUC of that projection).
 */

import type { InterpEmergentAlignmentConfig } from "../config/interp.ts";
import { chatExamples } from "../engine/chat-examples.ts";
import { LocalModelApi } from "../models/local.ts";
import type { InterpProjectionReading, InterpResults } from "../results/interp.ts";
import { canonicalJson, deriveSeed, sha256 } from "../runs/canonical.ts";
import { type Conversation, collectActivations } from "./activations.ts";
import { rocAuc } from "./auc.ts";
import { generationPositions, type PositionSpec, steeringHooks } from "./interventions.ts";
import type { EvalSample } from "./model-eval.ts";
import type { InterpTarget } from "./requests.ts";
import { type StoredEvalOptions, storedEvaluate } from "./stored-sweep.ts";
import type { EmergentAlignmentPlan } from "./study-training.ts";
import type { TrainingSectionContext } from "./training-context.ts";
import { engineCopy, InMemoryTuning, resolveTraining, yieldTurn } from "./tune.ts";
import { dot, unit, vectorsHash } from "./vectors.ts";

type EmergentBlock = NonNullable<InterpResults["emergent_alignment"]>;
type Round = EmergentBlock["rounds"][number];

/** The store experiment of the loop's generations (its judge questions: `.judge` added). */
export const LOOP_EXPERIMENT = "interp.loop";

const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * Per layer: the answers' mean projection on the unit direction, split by the judge's harmful
 * verdict, and the AUC of the projection for harmful vs safe (null with one class empty).
 */
export function projectionReadings(
  rows: ReadonlyMap<number, readonly Float32Array[]>,
  harmful: readonly boolean[],
  directions: ReadonlyMap<number, ArrayLike<number>>,
): InterpProjectionReading[] {
  return [...directions.keys()]
    .sort((a, b) => a - b)
    .map((layer) => {
      const u = unit(directions.get(layer)!, `persona direction (layer ${layer})`);
      const proj = (rows.get(layer) ?? []).map((r) => dot(r, u));
      const labels = harmful.map((h) => (h ? 1 : 0));
      return {
        layer,
        mean: mean(proj),
        mean_harmful: mean(proj.filter((_, i) => harmful[i])),
        mean_safe: mean(proj.filter((_, i) => !harmful[i])),
        auc: proj.length ? fin(rocAuc(proj, labels)) : null,
      };
    });
}

export async function runEmergentAlignment(
  x: TrainingSectionContext,
  cfg: InterpEmergentAlignmentConfig,
  plan: EmergentAlignmentPlan,
  direction: ReadonlyMap<number, Float32Array> | undefined,
): Promise<EmergentBlock> {
  const dirLayers = direction ? [...direction.keys()].sort((a, b) => a - b) : [];
  const probeLayer =
    cfg.probe_layer ?? (typeof cfg.layers === "number" ? cfg.layers : (dirLayers.at(-1) ?? 0));
  const train = resolveTraining(cfg, cfg.steps);
  const block: EmergentBlock = {
    model: cfg.model,
    direction_from: cfg.direction_from,
    layers: cfg.layers,
    alpha: cfg.alpha,
    positions: cfg.positions,
    probe_layer: probeLayer,
    train_prompts: plan.trainPrompts.length,
    samples_per_prompt: cfg.samples_per_prompt,
    train,
    prompts: plan.prompts.length,
    samples: cfg.samples,
    seed: cfg.seed,
    judge: x.judgeInfo,
    skipped: null,
    rounds: [],
  };
  if (!direction)
    return { ...block, skipped: `model '${cfg.direction_from}' has no persona direction (see directions)` };
  const engine = engineCopy(x.model(cfg.model).engine());
  const nLayers = engine.model.shape.layers;
  if (cfg.layers !== "all" && cfg.layers >= nLayers)
    throw new Error(
      `interp.emergent_alignment.layers: layer ${cfg.layers} is not a block of ${cfg.model} (${nLayers} blocks)`,
    );
  if (!direction.has(probeLayer))
    throw new Error(
      `interp.emergent_alignment.probe_layer: layer ${probeLayer} has no persona direction (layers ${dirLayers.join(", ")})`,
    );
  const api = new LocalModelApi({ provider: "local", model: cfg.model }, engine);
  const positions: PositionSpec = generationPositions(cfg.positions, engine);
  const steerLayers = cfg.layers === "all" ? ("all" as const) : [cfg.layers];
  const steered = api.withHooks(
    steeringHooks(direction, cfg.alpha, { layers: steerLayers, nLayers, positions }),
  );
  const steering = { direction: vectorsHash(direction), alpha: cfg.alpha, layers: steerLayers, positions };
  // The copy's weights so far: a chain over the rounds' training (data, settings, seed).
  let weights = sha256(canonicalJson({ section: "emergent_alignment", model: cfg.model }));
  const unsteered = (): InterpTarget => ({ modelId: cfg.model, api, variant: { v: 1, weights } });
  const evalOpts = (item: string): StoredEvalOptions => ({
    experiment: LOOP_EXPERIMENT,
    item,
    prompts: plan.prompts,
    judge: x.judge,
    samples: cfg.samples,
    seed: cfg.seed,
    params: cfg.params,
  });

  const evaluate = async (round: number, rest: Pick<Round, "collected" | "loss">): Promise<Round> => {
    x.check();
    const { evaluation, samples } = await storedEvaluate(
      x.requests,
      unsteered(),
      evalOpts(`round=${round}|eval`),
    );
    x.check();
    // An empty answer has no tokens to read activations from.
    const withTokens = samples.filter((s) => s.answer.trim() !== "");
    let layers: InterpProjectionReading[] = [];
    if (withTokens.length > 0) {
      const ds = collectActivations(engine, withTokens.map(conversationOf), {
        layers: dirLayers,
        position: "answer_mean",
      });
      layers = projectionReadings(
        ds.rows,
        withTokens.map((s) => s.verdict.harmful === true),
        direction,
      );
    }
    const probe = layers.find((l) => l.layer === probeLayer) ?? null;
    x.log(
      `interp: emergent alignment of ${cfg.model}: round ${round}: harmful ${evaluation.harmful.rate ?? "–"}, projection ${probe?.mean ?? "–"}`,
    );
    return { round, ...rest, ...evaluation, probe, layers };
  };

  block.rounds.push(await evaluate(0, { collected: null, loss: null }));
  for (let round = 1; round <= cfg.rounds; round++) {
    x.check();
    const collected = await storedEvaluate(
      x.requests,
      { modelId: cfg.model, api: steered, variant: { v: 1, weights, steering } },
      {
        ...evalOpts(`round=${round}|collect`),
        prompts: plan.trainPrompts,
        samples: cfg.samples_per_prompt,
        seed: deriveSeed(cfg.seed, "collect", round),
      },
    );
    const kept = collected.samples.filter((s) => s.verdict.coherent === true && s.answer.trim() !== "");
    let loss: Round["loss"] = null;
    if (kept.length > 0) {
      const examples = chatExamples(
        kept.map((s) => [
          { role: "user" as const, content: s.question },
          { role: "assistant" as const, content: s.answer },
        ]),
        engine.tokenizer,
        engine.template,
      );
      const seed = deriveSeed(cfg.train_seed, "round", round);
      const data = kept.map((s) => [s.question, s.answer]);
      weights = sha256(canonicalJson({ after: weights, round, data, train, seed }));
      const tuning = new InMemoryTuning(engine, examples, train, seed);
      const losses: number[] = [];
      while (!tuning.done) {
        x.check();
        losses.push(tuning.step());
        await yieldTurn();
      }
      tuning.finish();
      loss = { first: losses[0], last: losses[losses.length - 1] };
    } else x.log(`interp: emergent alignment round ${round}: no coherent steered answer to train on`);
    block.rounds.push(
      await evaluate(round, {
        collected: {
          answers: collected.samples.length,
          kept: kept.length,
          harmful_kept: kept.filter((s) => s.verdict.harmful === true).length,
          harmful: collected.evaluation.harmful,
          coherent: collected.evaluation.coherent,
        },
        loss,
      }),
    );
  }
  return block;
}

function conversationOf(s: EvalSample): Conversation {
  return { messages: [{ role: "user", content: s.question }], answer: s.answer };
}
