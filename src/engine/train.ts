import { backward, clearTape } from "./autograd.ts";
import type { Hooks } from "./hooks.ts";
import type { LlamaModel } from "./model.ts";
import { linearCrossEntropy } from "./ops/cross-entropy.ts";
import { AdamW, clipGradNorm, lrAt } from "./optim.ts";
import { Rng, type RngState } from "./rng.ts";

/** One training sequence; `lossMask[t] = 1` when token t is a target (e.g. assistant tokens). */
export interface TrainExample {
  ids: number[];
  lossMask?: number[];
}

export interface TrainConfig {
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps; default: enough for `epochs` passes. */
  steps?: number;
  epochs?: number;
  batchSize: number;
  /** Micro-batches per optimizer step (their gradients are averaged). */
  gradAccum?: number;
  warmupSteps?: number;
  /** Cosine floor as a fraction of lr (1 = constant lr after warmup). */
  minLrRatio?: number;
  maxSeqLen?: number;
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** Global-norm gradient clipping; 0 or Infinity = off. */
  maxGradNorm?: number;
  seed?: number;
  /** Shuffle the data each epoch (default true). */
  shuffle?: boolean;
  /** Hooks active during training (gradients flow through their edits). */
  hooks?: Hooks;
  /** Padding id for short rows (never a target). */
  padId?: number;
}

export interface StepInfo {
  step: number;
  lr: number;
  loss: number;
  gradNorm: number;
  /** Target tokens in this step. */
  tokens: number;
}

export interface TrainerState {
  step: number;
  cursor: number;
  rng: RngState;
  losses: number[];
}

/** A padded micro-batch: inputs [B, T] and aligned labels (−100 = not a target). */
export interface Batch {
  inputs: number[][];
  labels: number[][];
}

/** Builds a batch: inputs are ids[0..n−2], labels ids[1..n−1] where the mask allows. */
export function makeBatch(examples: TrainExample[], maxSeqLen: number, padId = 0): Batch {
  const rows = examples.map((ex, i) => {
    if (ex.lossMask && ex.lossMask.length !== ex.ids.length) {
      throw new Error(
        `training example ${i}: lossMask has ${ex.lossMask.length} entries for ${ex.ids.length} ids`,
      );
    }
    const n = Math.min(ex.ids.length, maxSeqLen + 1);
    const inputs = ex.ids.slice(0, n - 1);
    const labels = ex.ids.slice(1, n).map((t, j) => (!ex.lossMask || ex.lossMask[j + 1] ? t : -100));
    return { inputs, labels };
  });
  const T = Math.max(1, ...rows.map((r) => r.inputs.length));
  return {
    inputs: rows.map((r) => [...r.inputs, ...new Array<number>(T - r.inputs.length).fill(padId)]),
    labels: rows.map((r) => [...r.labels, ...new Array<number>(T - r.labels.length).fill(-100)]),
  };
}

/** Forward + masked cross-entropy on a batch (records the tape unless under noGrad). */
export function batchLoss(
  model: LlamaModel,
  batch: Batch,
  opts: { hooks?: Hooks; train?: boolean; rng?: Rng; gradSeed?: number } = {},
) {
  // The head and the loss fused: the [B·T, vocab] logits are never held whole.
  const hidden = model.forward(batch.inputs, {
    hooks: opts.hooks,
    train: opts.train,
    rng: opts.rng,
    hidden: true,
  });
  return linearCrossEntropy(hidden, model.lmHead(), Int32Array.from(batch.labels.flat()), null, {
    gradSeed: opts.gradSeed,
  });
}

/**
 * The training loop, readable top to bottom: for each optimizer step, gradAccum
 * micro-batches of forward → masked loss → backward, then clip, set the lr from the
 * schedule, and take one AdamW step. Trains whatever requires a gradient: every weight
 * (full fine-tuning) or only LoRA adapters (after peft.addLora / loadAdapter).
 */
export class Trainer {
  readonly model: LlamaModel;
  readonly examples: TrainExample[];
  readonly cfg: Required<Omit<TrainConfig, "steps" | "epochs" | "hooks">> & { hooks?: Hooks };
  readonly totalSteps: number;
  readonly optimizer: AdamW;
  rng: Rng;
  step = 0;
  /** Examples consumed so far in the (epoch-by-epoch shuffled) data stream. */
  cursor = 0;
  losses: number[] = [];
  private orderEpoch = -1;
  private order: number[] = [];

  constructor(model: LlamaModel, examples: TrainExample[], cfg: TrainConfig) {
    if (examples.length === 0) throw new Error("training needs at least one example");
    if (!(cfg.batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${cfg.batchSize}`);
    this.model = model;
    this.examples = examples;
    this.cfg = {
      lr: cfg.lr,
      batchSize: cfg.batchSize,
      gradAccum: cfg.gradAccum ?? 1,
      warmupSteps: cfg.warmupSteps ?? 0,
      minLrRatio: cfg.minLrRatio ?? 0,
      maxSeqLen: cfg.maxSeqLen ?? model.shape.maxPositions,
      weightDecay: cfg.weightDecay ?? 0,
      betas: cfg.betas ?? [0.9, 0.999],
      eps: cfg.eps ?? 1e-8,
      maxGradNorm: cfg.maxGradNorm ?? 1,
      seed: cfg.seed ?? 0,
      shuffle: cfg.shuffle ?? true,
      padId: cfg.padId ?? 0,
      hooks: cfg.hooks,
    };
    const perStep = this.cfg.batchSize * this.cfg.gradAccum;
    this.totalSteps = cfg.steps ?? Math.max(1, Math.ceil(((cfg.epochs ?? 1) * examples.length) / perStep));
    const params = model.trainableParameters();
    if (params.length === 0) throw new Error("nothing to train: no parameter requires a gradient");
    this.optimizer = new AdamW(params, {
      lr: this.cfg.lr,
      betas: this.cfg.betas,
      eps: this.cfg.eps,
      weightDecay: this.cfg.weightDecay,
    });
    this.rng = new Rng(this.cfg.seed ^ 0x5eed);
  }

  get done(): boolean {
    return this.step >= this.totalSteps;
  }

  /** The next `n` examples of the stream; each epoch is a fresh permutation of (seed, epoch). */
  private take(n: number): TrainExample[] {
    const N = this.examples.length;
    const out: TrainExample[] = [];
    for (let i = 0; i < n; i++) {
      const epoch = Math.floor(this.cursor / N);
      if (epoch !== this.orderEpoch) {
        this.order = Array.from({ length: N }, (_, j) => j);
        if (this.cfg.shuffle) new Rng((this.cfg.seed * 7919 + epoch) >>> 0).shuffle(this.order);
        this.orderEpoch = epoch;
      }
      out.push(this.examples[this.order[this.cursor % N]]);
      this.cursor++;
    }
    return out;
  }

  /** One optimizer step. */
  trainStep(): StepInfo {
    const { model, optimizer, cfg } = this;
    optimizer.zeroGrad();
    let lossSum = 0;
    let tokens = 0;
    for (let micro = 0; micro < cfg.gradAccum; micro++) {
      const batch = makeBatch(this.take(cfg.batchSize), cfg.maxSeqLen, cfg.padId);
      const seed = Float32Array.of(1 / cfg.gradAccum);
      const loss = batchLoss(model, batch, {
        hooks: cfg.hooks,
        train: true,
        rng: this.rng,
        gradSeed: seed[0],
      });
      backward(loss, seed);
      clearTape();
      lossSum += loss.item();
      tokens += batch.labels.flat().filter((t) => t >= 0).length;
    }
    const gradNorm = clipGradNorm(optimizer.params, cfg.maxGradNorm);
    const lr = lrAt(this.step, {
      peak: cfg.lr,
      warmupSteps: cfg.warmupSteps,
      totalSteps: this.totalSteps,
      minRatio: cfg.minLrRatio,
    });
    optimizer.lr = lr;
    optimizer.update();
    this.step++;
    const loss = lossSum / cfg.gradAccum;
    this.losses.push(loss);
    return { step: this.step, lr, loss, gradNorm, tokens };
  }

  /** Trains to the end (or until `onStep` returns false). */
  run(onStep?: (info: StepInfo) => unknown): StepInfo[] {
    const out: StepInfo[] = [];
    while (!this.done) {
      const info = this.trainStep();
      out.push(info);
      if (onStep && onStep(info) === false) break;
    }
    return out;
  }

  state(): TrainerState {
    return { step: this.step, cursor: this.cursor, rng: this.rng.getState(), losses: [...this.losses] };
  }

  restore(s: TrainerState): void {
    this.step = s.step;
    this.cursor = s.cursor;
    this.rng = Rng.fromState(s.rng);
    this.losses = [...s.losses];
    this.optimizer.step = s.step;
    this.orderEpoch = -1;
  }
}
