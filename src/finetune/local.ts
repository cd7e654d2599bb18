/**
 * The local backend: trains a prepared plan on the emlab engine. Stages run in order on one
 * model; with LoRA one adapter is added (or, on a LoRA plan, the parent's adapter is loaded)
 * and trained through every stage, then saved in PEFT's layout; without, every weight trains
 * and the model is saved as an HF-layout directory with the base's tokenizer files.
 */
import { copyFileSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CHAT_TEMPLATE_FILE } from "../engine/io/chat-template-file.ts";
import { addLora, loadAdapter, mergeLora, saveAdapter } from "../engine/peft.ts";
import { loadModel, saveModel } from "../engine/pretrained.ts";
import { Trainer } from "../engine/train.ts";
import type { LocalFinetuneResult } from "../results/finetune.ts";
import { deriveSeed } from "../runs/canonical.ts";
import type { PreparedPlan } from "./plan.ts";

export interface StepReport {
  planId: string;
  stage: number;
  /** Steps done in the plan, over all its stages. */
  step: number;
  totalSteps: number;
  loss: number;
}

export interface LocalTrainOptions {
  signal?: AbortSignal;
  onStep?: (r: StepReport) => void;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** Trains the plan and saves it to `plan.outDir`; null when the signal stopped it (nothing saved). */
export async function trainLocalPlan(
  p: PreparedPlan,
  opts: LocalTrainOptions = {},
): Promise<LocalFinetuneResult | null> {
  const { plan } = p;
  const model = loadModel(p.start.modelDir);
  if (plan.lora) {
    if (p.start.adapterDir) loadAdapter(model, p.start.adapterDir, { trainable: true });
    else
      addLora(model, {
        rank: plan.lora.rank,
        alpha: plan.lora.alpha,
        rslora: plan.lora.rslora,
        dropout: plan.lora.dropout,
        targets: plan.lora.target_modules,
        layers: plan.lora.layers,
        seed: deriveSeed(p.seed, "lora"),
      });
  } else {
    if (p.start.adapterDir) {
      loadAdapter(model, p.start.adapterDir, { trainable: false });
      mergeLora(model);
    }
    model.setBaseTrainable(true);
  }

  const totalSteps = p.stages.reduce((a, s) => a + s.steps, 0);
  const lossCurve: number[] = [];
  const stages: LocalFinetuneResult["stages"] = [];
  let done = 0;
  for (const [j, s] of p.stages.entries()) {
    const trainer = new Trainer(model, s.examples, {
      lr: s.learningRate,
      steps: s.steps,
      batchSize: s.batchSize,
      warmupSteps: s.warmupSteps,
      minLrRatio: s.minLrRatio,
      maxSeqLen: s.maxSeqLen,
      seed: s.seed,
    });
    let tokens = 0;
    while (!trainer.done) {
      if (opts.signal?.aborted) return null;
      const info = trainer.trainStep();
      if (!Number.isFinite(info.loss))
        throw new Error(
          `fine-tune '${plan.id}' stage ${j + 1}: loss is ${info.loss} at step ${info.step} (try a lower learning_rate)`,
        );
      tokens += info.tokens;
      lossCurve.push(round4(info.loss));
      done++;
      opts.onStep?.({ planId: plan.id, stage: j, step: done, totalSteps, loss: info.loss });
      // Training is synchronous: give the event loop a turn so Ctrl-C and progress get through.
      await new Promise((resolve) => setImmediate(resolve));
    }
    stages.push({ dataset: s.dataset, steps: s.steps, examples: s.examples.length, tokens });
  }

  // A plan killed mid-way left nothing behind, but a retrained one may find an older save.
  rmSync(p.outDir, { recursive: true, force: true });
  if (plan.lora) saveAdapter(model, p.outDir, { baseModel: p.start.modelDir });
  else {
    saveModel(model, p.outDir, { tokenizerFrom: p.rootDir });
    // The transformers 5.x layout keeps the chat template beside tokenizer_config.json.
    const template = join(p.rootDir, CHAT_TEMPLATE_FILE);
    if (existsSync(template)) copyFileSync(template, join(p.outDir, CHAT_TEMPLATE_FILE));
  }
  return {
    base: plan.base,
    method: plan.lora ? "lora" : "full",
    steps: totalSteps,
    examples: stages.reduce((a, s) => a + s.examples, 0),
    tokens: stages.reduce((a, s) => a + s.tokens, 0),
    first_loss: lossCurve[0],
    last_loss: lossCurve[lossCurve.length - 1],
    loss_curve: lossCurve,
    stages,
  };
}
