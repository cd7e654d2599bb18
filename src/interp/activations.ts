/**
 * Activation datasets: the residual stream (`blocks.{i}.hook_resid_post`) of a local engine
 * model on whole conversations (prompt + assistant answer), reduced to one d_model row per
 * conversation and layer, and saved beside a run as safetensors + a JSON index.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { type ChatMessage, renderChatForTraining } from "../engine/io/chat-template.ts";
import { readSafetensors, writeSafetensors } from "../engine/io/safetensors.ts";
import type { LocalEngine } from "../models/local.ts";

/**
 * How one conversation becomes one row: `answer_mean` averages over the answer's tokens
 * (the assistant content, without its end marker), `last` takes the answer's last token.
 */
export type PositionMode = "answer_mean" | "last";

/** A conversation to read: the prompt messages, then the assistant answer being studied. */
export interface Conversation {
  messages: ChatMessage[];
  answer: string;
}

/** One d_model-wide row per conversation, per layer (rows in conversation order). */
export interface ActivationDataset {
  position: PositionMode;
  layers: number[];
  dModel: number;
  rows: Map<number, Float32Array[]>;
  /** Answer tokens each row was reduced from. */
  answerTokens: number[];
  /** Optional per-row labels (e.g. 1 = misaligned) and keys (e.g. request ids). */
  labels?: number[];
  keys?: string[];
}

export interface CollectOptions {
  /** Block indices to read (default: every block). */
  layers?: number[];
  position?: PositionMode;
  /** Conversations per forward pass (default 8). Rows are right-padded, which is exact for a causal model. */
  batchSize?: number;
}

export const ActivationIndexSchema = z
  .object({
    format: z.literal("emlab.activations.v1"),
    hook: z.literal("hook_resid_post"),
    position: z.enum(["answer_mean", "last"]),
    layers: z.array(z.number().int().nonnegative()).min(1),
    dModel: z.number().int().positive(),
    count: z.number().int().nonnegative(),
    answerTokens: z.array(z.number().int().nonnegative()),
    labels: z.array(z.number()).optional(),
    keys: z.array(z.string()).optional(),
    /** The tensor holding layer i is `layer.{i}`, shape [count, dModel]. */
    file: z.string(),
  })
  .strict();
export type ActivationIndex = z.infer<typeof ActivationIndexSchema>;

type Reader = Pick<LocalEngine, "model" | "tokenizer" | "template">;

/** Token ids of a conversation and the positions of its answer tokens (end marker excluded). */
export function tokenizeConversation(
  engine: Pick<LocalEngine, "tokenizer" | "template">,
  conv: Conversation,
  where = "conversation",
): { ids: number[]; answerPositions: number[] } {
  const msgs: ChatMessage[] = [...conv.messages, { role: "assistant", content: conv.answer }];
  const { ids, assistantMask } = renderChatForTraining(msgs, engine.template, engine.tokenizer);
  // Only the last assistant turn is the answer; earlier assistant turns belong to the prompt.
  let end = assistantMask.length;
  while (end > 0 && assistantMask[end - 1] === 0) end--;
  let start = end;
  while (start > 0 && assistantMask[start - 1] === 1) start--;
  // The span ends with the end marker (<eos> / <|im_end|>): it is not part of the answer.
  if (end > start && engine.tokenizer.specialIds.has(ids[end - 1])) end--;
  if (end <= start)
    throw new Error(`${where}: the answer has no tokens (answer: ${JSON.stringify(conv.answer)})`);
  const answerPositions: number[] = [];
  for (let t = start; t < end; t++) answerPositions.push(t);
  return { ids, answerPositions };
}

/** Reads the residual stream after each requested block and reduces it to one row per conversation. */
export function collectActivations(
  engine: Reader,
  conversations: readonly Conversation[],
  opts: CollectOptions = {},
): ActivationDataset {
  const { model, tokenizer } = engine;
  const nLayers = model.shape.layers;
  const layers = opts.layers ?? Array.from({ length: nLayers }, (_, i) => i);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= nLayers)
      throw new Error(`collectActivations: layer ${l} is not a block of this model (0..${nLayers - 1})`);
  }
  const position = opts.position ?? "answer_mean";
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`collectActivations: batchSize must be a positive integer, got ${batchSize}`);
  const d = model.shape.hiddenSize;
  const pad = tokenizer.padId ?? 0;
  const tokenized = conversations.map((c, i) => tokenizeConversation(engine, c, `conversations[${i}]`));
  tokenized.forEach((t, i) => {
    if (t.ids.length > model.shape.maxPositions)
      throw new Error(
        `conversations[${i}]: ${t.ids.length} tokens exceed the model's context (${model.shape.maxPositions})`,
      );
  });
  const rows = new Map<number, Float32Array[]>(layers.map((l) => [l, []]));
  const names = layers.map((l) => `blocks.${l}.hook_resid_post`);
  for (let b0 = 0; b0 < tokenized.length; b0 += batchSize) {
    const chunk = tokenized.slice(b0, b0 + batchSize);
    const T = Math.max(...chunk.map((c) => c.ids.length));
    const batch = chunk.map((c) => [...c.ids, ...new Array<number>(T - c.ids.length).fill(pad)]);
    // runWithCache runs under noGrad: no autograd tape is recorded.
    const { cache } = model.runWithCache(batch, names);
    layers.forEach((l, li) => {
      const act = cache.get(names[li])!.data;
      chunk.forEach((c, b) => {
        const row = new Float32Array(d);
        const positions =
          position === "last" ? [c.answerPositions[c.answerPositions.length - 1]] : c.answerPositions;
        for (const t of positions) {
          const o = (b * T + t) * d;
          for (let j = 0; j < d; j++) row[j] += act[o + j];
        }
        for (let j = 0; j < d; j++) row[j] /= positions.length;
        rows.get(l)!.push(row);
      });
    });
  }
  return {
    position,
    layers: [...layers],
    dModel: d,
    rows,
    answerTokens: tokenized.map((t) => t.answerPositions.length),
  };
}

const TENSORS_FILE = "activations.safetensors";
const INDEX_FILE = "activations.json";

/** Writes `activations.safetensors` (tensor `layer.{i}`: [count, dModel]) and `activations.json` into dir. */
export function saveActivations(dir: string, ds: ActivationDataset): void {
  const count = ds.answerTokens.length;
  if (ds.labels && ds.labels.length !== count)
    throw new Error(`saveActivations: ${ds.labels.length} labels for ${count} rows`);
  if (ds.keys && ds.keys.length !== count)
    throw new Error(`saveActivations: ${ds.keys.length} keys for ${count} rows`);
  mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const l of ds.layers) {
    const rs = ds.rows.get(l);
    if (!rs || rs.length !== count)
      throw new Error(`saveActivations: layer ${l} has ${rs?.length ?? 0} rows, expected ${count}`);
    const data = new Float32Array(count * ds.dModel);
    rs.forEach((r, i) => {
      if (r.length !== ds.dModel)
        throw new Error(`saveActivations: layer ${l} row ${i} has ${r.length} values, expected ${ds.dModel}`);
      data.set(r, i * ds.dModel);
    });
    tensors.set(`layer.${l}`, { shape: [count, ds.dModel], data });
  }
  writeSafetensors(join(dir, TENSORS_FILE), tensors);
  const index: ActivationIndex = {
    format: "emlab.activations.v1",
    hook: "hook_resid_post",
    position: ds.position,
    layers: ds.layers,
    dModel: ds.dModel,
    count,
    answerTokens: ds.answerTokens,
    ...(ds.labels ? { labels: ds.labels } : {}),
    ...(ds.keys ? { keys: ds.keys } : {}),
    file: TENSORS_FILE,
  };
  writeFileSync(join(dir, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
}

/** Reads a dataset written by saveActivations, checking the index against the tensors. */
export function loadActivations(dir: string): ActivationDataset {
  const indexPath = join(dir, INDEX_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(indexPath, "utf8"));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read the activation index (${(e as Error).message})`);
  }
  const parsed = ActivationIndexSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${indexPath}: field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const index = parsed.data;
  const tensorPath = join(dir, index.file);
  const { tensors } = readSafetensors(tensorPath);
  const rows = new Map<number, Float32Array[]>();
  for (const l of index.layers) {
    const t = tensors.get(`layer.${l}`);
    if (!t) throw new Error(`${tensorPath}: tensor "layer.${l}" (listed in ${indexPath}) is missing`);
    if (t.shape.length !== 2 || t.shape[0] !== index.count || t.shape[1] !== index.dModel)
      throw new Error(
        `${tensorPath}: tensor "layer.${l}" has shape [${t.shape.join(", ")}], expected [${index.count}, ${index.dModel}]`,
      );
    rows.set(
      l,
      Array.from({ length: index.count }, (_, i) => t.data.slice(i * index.dModel, (i + 1) * index.dModel)),
    );
  }
  for (const [field, arr] of [
    ["answerTokens", index.answerTokens],
    ["labels", index.labels],
    ["keys", index.keys],
  ] as const) {
    if (arr && arr.length !== index.count)
      throw new Error(`${indexPath}: field ${field} has ${arr.length} entries, expected ${index.count}`);
  }
  return {
    position: index.position,
    layers: index.layers,
    dModel: index.dModel,
    rows,
    answerTokens: index.answerTokens,
    ...(index.labels ? { labels: index.labels } : {}),
    ...(index.keys ? { keys: index.keys } : {}),
  };
}
