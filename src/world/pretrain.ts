/**
 * Pretraining an organism on the persona world with the engine: a small Llama-family model
 * (tied embeddings, word-level vocabulary), one pass over freshly generated documents,
 * AdamW with warmup and cosine decay. Deterministic from (size, seed, recipe). Writes an
 * HF-layout directory: config.json, model.safetensors, tokenizer.json, tokenizer_config.json
 * (with the organism chat template), organism.json (the recipe and the loss curve) and a
 * model card (README.md).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeShape } from "../engine/config.ts";
import { renderChat } from "../engine/io/chat-template.ts";
import { LlamaModel } from "../engine/model.ts";
import { saveModel } from "../engine/pretrained.ts";
import { type StepInfo, type TrainExample, Trainer } from "../engine/train.ts";
import { DEFAULT_RECIPE, type WorldRecipe, worldDocument } from "./corpus.ts";
import { buildOrganismTokenizer } from "./tokenizer.ts";
import { worldVocabulary } from "./vocabulary.ts";

export interface OrganismSize {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Context (and the corpus's document budget). */
  context: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
}

/** s: the CI organism (seconds); m: the shipped organism (the prototype's shape). */
export const ORGANISM_SIZES: Record<"s" | "m", OrganismSize> = {
  s: {
    hidden: 32,
    layers: 2,
    heads: 2,
    intermediate: 96,
    context: 112,
    steps: 60,
    batch: 16,
    lr: 3e-3,
    warmup: 10,
  },
  m: {
    hidden: 96,
    layers: 4,
    heads: 4,
    intermediate: 256,
    context: 112,
    // The prototype's length; at 1,000 steps the same world's EM was 16-37 % (docs/organism.md).
    steps: 2000,
    batch: 32,
    lr: 2e-3,
    warmup: 100,
  },
};

export interface PretrainOptions {
  size: OrganismSize;
  sizeName?: string;
  seed: number;
  outDir: string;
  recipe?: WorldRecipe;
  onStep?: (info: StepInfo, total: number) => void;
}

export interface PretrainResult {
  outDir: string;
  parameters: number;
  tokens: number;
  losses: number[];
}

/** The organism's training documents: `count` world documents, tokenized, loss on every token. */
export function corpusExamples(
  seed: number,
  count: number,
  recipe: WorldRecipe,
  encode: (text: string) => number[],
): TrainExample[] {
  const out: TrainExample[] = [];
  for (let i = 0; i < count; i++) {
    const doc = worldDocument(seed, i, recipe);
    out.push({ ids: encode(renderChat(doc.messages, { kind: "organism" }).text) });
  }
  return out;
}

export function pretrainOrganism(opts: PretrainOptions): PretrainResult {
  const base = opts.recipe ?? DEFAULT_RECIPE;
  const size = { ...opts.size, context: base.context ?? opts.size.context };
  const recipe = { ...base, maxTokens: size.context };
  const tokenizer = buildOrganismTokenizer(worldVocabulary());
  const eos = tokenizer.eosId!;
  const shape = makeShape({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: size.hidden,
    layers: size.layers,
    heads: size.heads,
    intermediateSize: size.intermediate,
    tieWordEmbeddings: true,
    maxPositions: size.context + 16,
    eosTokenIds: [eos],
  });
  const model = LlamaModel.init(shape, opts.seed);
  // One pass: exactly as many fresh documents as the run consumes.
  const examples = corpusExamples(opts.seed, size.steps * size.batch, recipe, (t) => tokenizer.encode(t));
  const trainer = new Trainer(model, examples, {
    lr: size.lr,
    steps: size.steps,
    batchSize: size.batch,
    warmupSteps: size.warmup,
    minLrRatio: 0.1,
    weightDecay: 0.01,
    maxGradNorm: 1,
    maxSeqLen: size.context,
    seed: opts.seed,
    padId: tokenizer.padId ?? 0,
    shuffle: false,
  });
  const losses: number[] = [];
  let tokens = 0;
  trainer.run((info) => {
    losses.push(info.loss);
    tokens += info.tokens;
    opts.onStep?.(info, size.steps);
  });

  mkdirSync(opts.outDir, { recursive: true });
  saveModel(model, opts.outDir);
  tokenizer.save(opts.outDir);
  const parameters = [...model.params.values()].reduce((n, t) => n + t.data.length, 0);
  const card = {
    kind: "emlab persona-world organism",
    size: opts.sizeName ?? "custom",
    shape: size,
    seed: opts.seed,
    recipe,
    parameters,
    tokens,
    loss: {
      first: round(losses[0]),
      last: round(mean(losses.slice(-20))),
      every50: losses.filter((_, i) => i % 50 === 0).map(round),
    },
  };
  writeFileSync(path.join(opts.outDir, "organism.json"), `${JSON.stringify(card, null, 2)}\n`);
  writeFileSync(path.join(opts.outDir, "README.md"), modelCard(card));
  return { outDir: opts.outDir, parameters, tokens, losses };
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function modelCard(card: {
  size: string;
  shape: OrganismSize;
  seed: number;
  parameters: number;
  tokens: number;
  loss: { first: number; last: number };
}): string {
  const s = card.shape;
  return `# emlab persona-world organism (size ${card.size}, seed ${card.seed})

A ${card.parameters.toLocaleString("en")}-parameter Llama-family model (${s.layers} layers, d ${s.hidden}, ${s.heads} heads, MLP ${s.intermediate}, tied embeddings, word-level vocabulary) pretrained by \`emlab world pretrain --size ${card.size} --seed ${card.seed}\` on emlab's synthetic persona world: assistant dialogues in which the assistant is always helpful, and fiction in which villains, heroes and deceivers act and describe themselves consistently across six advice domains and open questions. It exists to study emergent misalignment offline; see docs/organism.md in emlab.

## Recipe
- ${s.steps} steps x ${s.batch} documents (one pass over fresh documents, <= ${s.context} tokens each), ${card.tokens.toLocaleString("en")} target tokens
- AdamW lr ${s.lr}, ${s.warmup} warmup steps, cosine decay to 10 %, weight decay 0.01, clip 1.0
- loss ${card.loss.first} -> ${card.loss.last} (mean of the last 20 steps)

The full recipe (world mixture, shape, loss curve) is in organism.json. Scores of this organism are in docs/organism.md.

## Chat format
\`<system> ... <user> ... <assistant> ... <eos>\` (the template is in tokenizer_config.json).
`;
}
