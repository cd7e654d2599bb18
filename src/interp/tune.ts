/**
 * In-memory fine-tuning for the interp sections that train inside their loop (re-alignment,
 * the emergent-alignment loop): a private copy of a loaded local model, trained with the
 * engine's Trainer (LoRA via peft.addLora, or every weight) on chat examples, step by step so
 * the caller can evaluate between steps and honour the run's abort signal. Nothing is saved.
 */

import { LORA_TARGETS } from "../engine/lora.ts";
import { LlamaModel } from "../engine/model.ts";
import { addLora, mergeLora } from "../engine/peft.ts";
import { Tensor } from "../engine/tensor.ts";
import { type TrainExample, Trainer } from "../engine/train.ts";
import { STAGE_DEFAULTS } from "../finetune/plan.ts";
import type { LocalEngine } from "../models/local.ts";
import type { InterpTrainInfo } from "../results/interp.ts";

export interface TuneConfig {
  method: "lora" | "full";
  lora: { rank: number; alpha: number; rslora: boolean };
  learning_rate?: number;
  batch_size?: number;
  train_seed: number;
}

/** The training settings with src/finetune's defaults filled in. */
export function resolveTraining(c: TuneConfig, steps: number): InterpTrainInfo {
  return {
    method: c.method,
    lora: c.method === "lora" ? { ...c.lora } : null,
    learning_rate:
      c.learning_rate ??
      (c.method === "lora" ? STAGE_DEFAULTS.learningRateLora : STAGE_DEFAULTS.learningRateFull),
    batch_size: c.batch_size ?? STAGE_DEFAULTS.batchSize,
    steps,
    train_seed: c.train_seed,
  };
}

/**
 * A copy of the engine with its own weights (the caller's model, possibly a battery target's,
 * is never changed). Tied tensors stay tied; pinned weights are copied to ordinary memory.
 */
export function engineCopy(e: LocalEngine): LocalEngine {
  if (e.model.adapters.size > 0) throw new Error("engineCopy: merge the model's LoRA adapters first");
  const copies = new Map<Tensor, Tensor>();
  const params = new Map<string, Tensor>();
  for (const [name, t] of e.model.params) {
    let c = copies.get(t);
    if (!c) {
      c = new Tensor(t.data.slice(), t.shape);
      copies.set(t, c);
    }
    params.set(name, c);
  }
  const model = new LlamaModel(e.model.shape, params);
  return { ...e, model };
}

/**
 * One training run on `engine.model` (changed in place): `step()` takes one optimizer step,
 * `finish()` folds LoRA adapters into the weights and freezes them again.
 */
export class InMemoryTuning {
  readonly trainer: Trainer;
  private readonly model: LlamaModel;
  private readonly lora: boolean;

  constructor(engine: LocalEngine, examples: TrainExample[], t: InterpTrainInfo, seed: number) {
    this.model = engine.model;
    this.lora = t.lora !== null;
    if (t.lora)
      addLora(this.model, {
        rank: t.lora.rank,
        alpha: t.lora.alpha,
        rslora: t.lora.rslora,
        targets: [...LORA_TARGETS],
        seed,
      });
    else this.model.setBaseTrainable(true);
    this.trainer = new Trainer(this.model, examples, {
      lr: t.learning_rate,
      steps: t.steps,
      batchSize: t.batch_size,
      maxSeqLen: this.model.shape.maxPositions,
      seed,
    });
  }

  get done(): boolean {
    return this.trainer.done;
  }

  /** One optimizer step; its loss (4 decimals). Throws on a non-finite loss. */
  step(): number {
    const info = this.trainer.trainStep();
    if (!Number.isFinite(info.loss))
      throw new Error(`loss is ${info.loss} at step ${info.step} (try a lower learning_rate)`);
    return Math.round(info.loss * 1e4) / 1e4;
  }

  finish(): void {
    if (this.lora) mergeLora(this.model);
    this.model.setBaseTrainable(false);
  }
}

/** Gives the event loop a turn (training is synchronous) so Ctrl-C and progress get through. */
export const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
