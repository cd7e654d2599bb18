/**
 * Re-alignment (docs/methods.md §7.2: "120 examples, 30 steps"): fine-tune a private copy of
 * a misaligned model on a few benign conversations and, at each checkpoint step, measure its
 * harmful and coherent rates (the study's sweep judge) and its self-report (share of
 * misaligned picks on the battery's decision-format self-assessment items), beside the base
 * model's figures. Does the self-report move with the behaviour (Vaugrante et al.)?
 */

import type { InterpRealignmentConfig } from "../config/interp.ts";
import type { Conversation } from "../datasets/chat-jsonl.ts";
import { chatExamples } from "../engine/chat-examples.ts";
import { Rng } from "../engine/rng.ts";
import { LocalModelApi } from "../models/local.ts";
import type { InterpResults } from "../results/interp.ts";
import { canonicalJson, deriveSeed, sha256 } from "../runs/canonical.ts";
import type { InterpTarget } from "./requests.ts";
import { storedEvaluate, storedSelfReport } from "./stored-sweep.ts";
import type { RealignmentPlan } from "./study-training.ts";
import type { TrainingSectionContext } from "./training-context.ts";
import { engineCopy, InMemoryTuning, resolveTraining, yieldTurn } from "./tune.ts";

type RealignmentBlock = NonNullable<InterpResults["realignment"]>;

/** The store experiment of re-alignment's generations (its judge questions: `.judge` added). */
export const REALIGNMENT_EXPERIMENT = "interp.realignment";

/** `count` conversations drawn without replacement with the seed (all of them when fewer). */
export function drawExamples(data: readonly Conversation[], count: number, seed: number): Conversation[] {
  const order = Array.from({ length: data.length }, (_, i) => i);
  new Rng(seed).shuffle(order);
  return order.slice(0, Math.min(count, data.length)).map((i) => data[i]);
}

export async function runRealignment(
  x: TrainingSectionContext,
  cfg: InterpRealignmentConfig,
  plan: RealignmentPlan,
): Promise<RealignmentBlock> {
  const engine = engineCopy(x.model(cfg.model).engine());
  const api = new LocalModelApi({ provider: "local", model: cfg.model }, engine);
  const conversations = drawExamples(plan.data, cfg.examples, deriveSeed(cfg.train_seed, "examples"));
  let examples: ReturnType<typeof chatExamples>;
  try {
    examples = chatExamples(conversations, engine.tokenizer, engine.template);
  } catch (e) {
    throw new Error(`interp.realignment.dataset '${cfg.dataset}': ${(e as Error).message}`);
  }
  const train = resolveTraining(cfg, cfg.steps);
  const trainSeed = deriveSeed(cfg.train_seed, "train");
  // What the copy is trained on and how: with the step, what a checkpoint's answers depend on.
  const training = sha256(
    canonicalJson({ section: "realignment", examples: conversations, train, seed: trainSeed }),
  );
  const experiment = REALIGNMENT_EXPERIMENT;
  const measure = async (target: InterpTarget, item: string) => {
    x.check();
    const { evaluation } = await storedEvaluate(x.requests, target, {
      experiment,
      item,
      prompts: plan.prompts,
      judge: x.judge,
      samples: cfg.samples,
      seed: cfg.seed,
      params: cfg.params,
    });
    x.check();
    const self = plan.selfItems.length
      ? await storedSelfReport(x.requests, target, plan.selfItems, {
          experiment,
          item,
          samples: cfg.samples,
          seed: cfg.seed,
          params: plan.selfParams,
        })
      : null;
    return { ...evaluation, self_report: self };
  };

  let base_eval: RealignmentBlock["base_eval"] = null;
  if (cfg.base !== undefined) {
    x.log(`interp: realignment: evaluating the base model ${cfg.base}`);
    base_eval = await measure({ modelId: cfg.base, api: x.model(cfg.base) }, "base");
  }
  const gap = (rate: number | null) =>
    base_eval?.harmful.rate == null || rate === null ? null : rate - base_eval.harmful.rate;

  const checkpoints: RealignmentBlock["checkpoints"] = [];
  const at = async (step: number, loss: number | null) => {
    const variant = { v: 1, section: "realignment", training, step };
    const m = await measure({ modelId: cfg.model, api, variant }, `step=${step}`);
    checkpoints.push({ step, loss, ...m, gap_to_base: gap(m.harmful.rate) });
    x.log(
      `interp: realignment of ${cfg.model}: step ${step}/${cfg.steps}: harmful ${m.harmful.rate ?? "–"}, self-report ${m.self_report?.rate ?? "–"}`,
    );
  };
  const want = new Set(plan.checkpoints);
  const tuning = new InMemoryTuning(engine, examples, train, trainSeed);
  const lossCurve: number[] = [];
  if (want.has(0)) await at(0, null);
  for (let step = 1; step <= cfg.steps; step++) {
    x.check();
    const loss = tuning.step();
    lossCurve.push(loss);
    await yieldTurn();
    if (want.has(step)) await at(step, loss);
  }
  tuning.finish();
  return {
    model: cfg.model,
    base: cfg.base ?? null,
    dataset: cfg.dataset,
    examples: examples.length,
    train,
    prompts: plan.prompts.length,
    samples: cfg.samples,
    seed: cfg.seed,
    judge: x.judgeInfo,
    self_items: plan.selfItems.length,
    self_skipped: plan.selfSkipped,
    base_eval,
    loss_curve: lossCurve,
    checkpoints,
  };
}
