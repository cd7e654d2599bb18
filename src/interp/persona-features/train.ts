/**
 * Training an SAE on a local model's activations over a corpus (what `emlab sae train` runs):
 * every token's activation at the hook is read once, then shuffled per epoch (seeded) into
 * batches for the engine's trainSae; metrics and the spliced cross-entropy on held-out
 * documents afterwards. Deterministic from the arguments.
 */
import { seededRandom, shuffleInPlace } from "../../analysis/random.ts";
import {
  type SaeArchitecture,
  type SaeConfig,
  type SaeMetrics,
  type SaeTrainLogEntry,
  type SparseAutoencoder,
  saeMetrics,
  splicedCrossEntropy,
  trainSae,
} from "../../engine/sae/index.ts";
import {
  type CorpusSpec,
  corpusActivations,
  documentTokenBatches,
  type LocalEngineLike,
  type WorldDocuments,
} from "./corpus.ts";

export interface CorpusSaeArgs {
  engine: LocalEngineLike;
  hookName: string;
  corpus: CorpusSpec;
  /** Documents for the held-out metrics and the spliced cross-entropy. */
  heldOut: CorpusSpec;
  architecture: SaeArchitecture;
  dSae: number;
  k?: number;
  /** Training steps (batches); the corpus's tokens are reshuffled each epoch until then. */
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  l1Coefficient?: number;
  modelName?: string;
  world?: WorldDocuments;
  log?: (e: SaeTrainLogEntry) => void;
  /** Progress while activations are read. */
  progress?: (what: string) => void;
}

export interface CorpusSaeResult {
  sae: SparseAutoencoder;
  log: SaeTrainLogEntry[];
  /** Tokens of the training corpus (one epoch). */
  corpusTokens: number;
  heldOut: SaeMetrics;
  crossEntropy: { clean: number; spliced: number; zeroAblated: number; increase: number };
}

/** Every token's activation at `hookName` over the corpus, as one n×d array. */
export async function readCorpusRows(
  engine: LocalEngineLike,
  hookName: string,
  corpus: CorpusSpec,
  world?: WorldDocuments,
): Promise<{ rows: Float32Array; n: number }> {
  const parts: Float32Array[] = [];
  let n = 0;
  for await (const b of corpusActivations(engine, hookName, corpus, { world })) {
    parts.push(b.rows);
    n += b.n;
  }
  const d = engine.model.shape.hiddenSize;
  const rows = new Float32Array(n * d);
  let o = 0;
  for (const p of parts) {
    rows.set(p, o);
    o += p.length;
  }
  return { rows, n };
}

/** Layer of a `blocks.L.<point>` hook name; null for hook_embed. */
export function hookLayer(hookName: string): number | null {
  const m = /^blocks\.(\d+)\.hook_[a-z_]+$/.exec(hookName);
  if (m) return Number(m[1]);
  if (hookName === "hook_embed") return null;
  throw new Error(`hook name "${hookName}" is not blocks.L.hook_<point> or hook_embed`);
}

export async function trainCorpusSae(args: CorpusSaeArgs): Promise<CorpusSaeResult> {
  const { engine, hookName } = args;
  const d = engine.model.shape.hiddenSize;
  if (!engine.model.hookNames.includes(hookName))
    throw new Error(
      `the model has no hook point "${hookName}" (blocks 0..${engine.model.shape.layers - 1}, e.g. blocks.1.hook_resid_post)`,
    );
  const layer = hookLayer(hookName);
  const cfg: SaeConfig = {
    architecture: args.architecture,
    dIn: d,
    dSae: args.dSae,
    ...(args.architecture === "topk" ? { k: args.k } : {}),
    hookName,
    hookLayer: layer ?? 0,
    ...(args.modelName ? { modelName: args.modelName } : {}),
    applyBDecToInput: true,
    normalizeActivations: "none",
    extra: {
      context_size: engine.model.shape.maxPositions,
      dataset_path:
        args.corpus.kind === "world"
          ? `emlab-world:seed=${args.corpus.seed}:start=${args.corpus.start ?? 0}:documents=${args.corpus.documents}`
          : args.corpus.file,
    },
  };
  args.progress?.("reading activations");
  const { rows, n } = await readCorpusRows(engine, hookName, args.corpus, args.world);
  if (n < args.batchSize)
    throw new Error(`the corpus has ${n} tokens, fewer than one batch (${args.batchSize})`);
  const batchSize = args.batchSize;
  const steps = args.steps;
  // Each epoch a fresh seeded permutation of the tokens; the last partial batch is dropped.
  function* batches(): Generator<Float32Array> {
    const rng = seededRandom(args.seed);
    const order = Array.from({ length: n }, (_, i) => i);
    let step = 0;
    while (step < steps) {
      shuffleInPlace(order, rng);
      for (let b0 = 0; b0 + batchSize <= n && step < steps; b0 += batchSize, step++) {
        const out = new Float32Array(batchSize * d);
        for (let i = 0; i < batchSize; i++)
          out.set(rows.subarray(order[b0 + i]! * d, (order[b0 + i]! + 1) * d), i * d);
        yield out;
      }
    }
  }
  args.progress?.(`training on ${n} tokens`);
  const { sae, log } = await trainSae(cfg, batches(), {
    seed: args.seed,
    steps,
    learningRate: args.learningRate,
    batchSize,
    ...(args.l1Coefficient !== undefined ? { l1Coefficient: args.l1Coefficient } : {}),
    ...(args.log ? { log: args.log } : {}),
  });
  args.progress?.("held-out metrics");
  const held = await readCorpusRows(engine, hookName, args.heldOut, args.world);
  const heldOut = saeMetrics(sae, held.rows, held.n);
  const tokenBatches = documentTokenBatches(engine, args.heldOut, { world: args.world });
  const crossEntropy = splicedCrossEntropy(engine.model, sae, tokenBatches);
  return { sae, log, corpusTokens: n, heldOut, crossEntropy };
}
