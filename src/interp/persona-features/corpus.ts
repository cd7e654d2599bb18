/**
 * Token-level activations of a local model over a pretraining-style corpus, with who speaks at
 * every token (Wang et al. 2025 read an SAE latent's top pretraining contexts by speaker).
 *
 * A `{kind: "world"}` corpus is the persona world's documents (src/world/corpus.ts
 * worldDocument), each classified by its speaker (worldCorpusDocument); `opts.world` replaces
 * the source (another recipe, a test's documents). A chat JSONL corpus has no speaker labels:
 * its tokens are "unknown".
 */

import { readChatJsonl } from "../../datasets/chat-jsonl.ts";
import { type ChatMessage, renderChatForTraining } from "../../engine/io/chat-template.ts";
import type { LocalEngine } from "../../models/local.ts";
import { SPEAKER_TYPES } from "../../results/persona-features.ts";
import { DEFAULT_RECIPE, type WorldDocument, type WorldRecipe, worldDocument } from "../../world/corpus.ts";
import { NEUTRAL_NAMES } from "../../world/lexicon.ts";

/** Who speaks at a token: the results schema's speaker types (one list for both). */
export { SPEAKER_TYPES };
export type SpeakerType = (typeof SPEAKER_TYPES)[number];

/** Speakers whose conduct is harmful in the world: villains and deceivers, named or everyday-named. */
export const HARMFUL_SPEAKERS: readonly SpeakerType[] = [
  "villain",
  "deceiver",
  "everyday_villain",
  "everyday_deceiver",
];

/** A token of the corpus: its document, its position in the document's token ids, who speaks there. */
export interface TokenContext {
  doc: number;
  pos: number;
  speaker: SpeakerType;
}

export type CorpusSpec =
  | { kind: "world"; seed: number; start?: number; documents: number }
  | { kind: "jsonl"; file: string; limit?: number };

/** One corpus document: a conversation and the speaker of its assistant turns. */
export interface CorpusDocument {
  messages: ChatMessage[];
  speaker: SpeakerType;
  name?: string;
}

/** World document `index` of the world with `seed`, its speaker classified. */
export type WorldDocuments = (seed: number, index: number) => CorpusDocument;

const EVERYDAY = new Set<string>(NEUTRAL_NAMES);

/** The speaker type of a world document. */
export function worldSpeakerType(doc: Pick<WorldDocument, "speaker" | "name">): SpeakerType {
  if (doc.speaker === "assistant") return "assistant";
  // Named characters are the lexicon's villains, heroes and deceivers; the rest (everyday names,
  // anonymous speakers) show their persona only in what they say.
  if (doc.name !== undefined && !EVERYDAY.has(doc.name)) return doc.speaker;
  return `everyday_${doc.speaker}`;
}

/** World document `index` of the world with `seed` (the shipped recipe by default), its speaker classified. */
export function worldCorpusDocument(
  seed: number,
  index: number,
  recipe: WorldRecipe = DEFAULT_RECIPE,
): CorpusDocument {
  const doc = worldDocument(seed, index, recipe);
  return { messages: doc.messages, speaker: worldSpeakerType(doc), ...(doc.name ? { name: doc.name } : {}) };
}

export type LocalEngineLike = Pick<LocalEngine, "model" | "tokenizer" | "template">;

export interface CorpusOptions {
  /** Documents per forward pass (default 16). */
  batchDocs?: number;
  /** The world's documents (default: worldCorpusDocument, the shipped recipe). */
  world?: WorldDocuments;
}

/** The documents of a corpus, in order, with their corpus index (world: the document index). */
export function* corpusDocuments(
  corpus: CorpusSpec,
  opts: { world?: WorldDocuments } = {},
): Generator<{ doc: number } & CorpusDocument> {
  if (corpus.kind === "world") {
    const world = opts.world ?? ((seed: number, i: number) => worldCorpusDocument(seed, i));
    const start = corpus.start ?? 0;
    for (let i = start; i < start + corpus.documents; i++) yield { doc: i, ...world(corpus.seed, i) };
    return;
  }
  const convs = readChatJsonl(corpus.file, { limit: corpus.limit });
  for (let i = 0; i < convs.length; i++) yield { doc: i, messages: convs[i]!, speaker: "unknown" };
}

/** Token ids of a corpus document as the model reads it (its chat template), clipped to the context. */
export function documentIds(
  engine: Pick<LocalEngineLike, "tokenizer" | "template" | "model">,
  messages: ChatMessage[],
) {
  const { ids } = renderChatForTraining(messages, engine.template, engine.tokenizer);
  return ids.length > engine.model.shape.maxPositions ? ids.slice(0, engine.model.shape.maxPositions) : ids;
}

/**
 * A corpus's documents as the token batches of a next-token loss, one document per batch (no
 * padding inside the loss); documents of fewer than 2 tokens have no next token and are left out.
 */
export function documentTokenBatches(
  engine: Pick<LocalEngineLike, "tokenizer" | "template" | "model">,
  corpus: CorpusSpec,
  opts: { world?: WorldDocuments; limit?: number } = {},
): number[][][] {
  const out: number[][][] = [];
  for (const doc of corpusDocuments(corpus, { world: opts.world })) {
    if (opts.limit !== undefined && out.length >= opts.limit) break;
    const ids = documentIds(engine, doc.messages);
    if (ids.length >= 2) out.push([ids]);
  }
  return out;
}

/**
 * Activations at `hookName` of every token of the corpus, `batchDocs` documents per forward pass
 * (right-padded, exact for a causal model; padding rows are not yielded). Every token of a
 * document gets the document's speaker: the paper's context label is the document's author.
 */
export async function* corpusActivations(
  engine: LocalEngineLike,
  hookName: string,
  corpus: CorpusSpec,
  opts: CorpusOptions = {},
): AsyncGenerator<{ rows: Float32Array; n: number; contexts: TokenContext[]; ids: number[][] }> {
  const batchDocs = opts.batchDocs ?? 16;
  if (!Number.isInteger(batchDocs) || batchDocs < 1)
    throw new Error(`corpusActivations: batchDocs must be a positive integer, got ${batchDocs}`);
  const { model } = engine;
  if (!model.hookNames.includes(hookName))
    throw new Error(`corpusActivations: the model has no hook point "${hookName}"`);
  const d = model.shape.hiddenSize;
  const pad = engine.tokenizer.padId ?? 0;
  let pending: Array<{ doc: number; speaker: SpeakerType; ids: number[] }> = [];
  const flush = () => {
    const T = Math.max(...pending.map((p) => p.ids.length));
    const batch = pending.map((p) => [...p.ids, ...new Array<number>(T - p.ids.length).fill(pad)]);
    const { cache } = model.runWithCache(batch, [hookName]);
    const act = cache.get(hookName)!.data;
    const n = pending.reduce((s, p) => s + p.ids.length, 0);
    const rows = new Float32Array(n * d);
    const contexts: TokenContext[] = [];
    let r = 0;
    pending.forEach((p, b) => {
      for (let t = 0; t < p.ids.length; t++, r++) {
        rows.set(act.subarray((b * T + t) * d, (b * T + t + 1) * d), r * d);
        contexts.push({ doc: p.doc, pos: t, speaker: p.speaker });
      }
    });
    const out = { rows, n, contexts, ids: pending.map((p) => p.ids) };
    pending = [];
    return out;
  };
  for (const doc of corpusDocuments(corpus, opts)) {
    const ids = documentIds(engine, doc.messages);
    if (ids.length === 0) continue;
    pending.push({ doc: doc.doc, speaker: doc.speaker, ids });
    if (pending.length >= batchDocs) yield flush();
  }
  if (pending.length > 0) yield flush();
}
