/**
 * Model diffing through an SAE (Wang et al. 2025 §3): encode the base and the fine-tuned model's
 * activations at the SAE's hook on the same conversations, average each latent over the answer
 * (or prompt and answer) tokens per conversation, and rank latents by fine-tuned − base. The
 * CI is a paired percentile bootstrap over conversations (src/analysis/intervals.ts): both
 * models read the same conversation, so its difficulty cancels.
 */
import { bootstrapMeanCi } from "../../analysis/intervals.ts";
import type { SparseAutoencoder } from "../../engine/sae/index.ts";
import { type Conversation, tokenizeConversation } from "../activations.ts";
import type { LocalEngineLike } from "./corpus.ts";

export interface LatentDiff {
  latent: number;
  /** Mean over conversations of the per-conversation mean activation. */
  base: number;
  fineTuned: number;
  delta: number;
  /** 95% paired bootstrap CI of delta over conversations. */
  ci: [number, number];
  /** 1 = largest increase. */
  rank: number;
}

/**
 * `prompt`: the tokens before the answer (prompt and chat template). Both models read the same
 * text there, so a latent that moves is the fine-tuned model's state, not the words it wrote.
 */
export type DiffPositions = "answer" | "prompt" | "prompt_and_answer";

/**
 * Per-conversation mean latent activations [conversations × dSae] of `engine` at the SAE's hook:
 * over the answer tokens, the tokens before the answer, or every token up to the answer's end.
 */
export function conversationLatentMeans(
  sae: SparseAutoencoder,
  engine: LocalEngineLike,
  conversations: readonly Conversation[],
  positions: DiffPositions,
  opts: { batchSize?: number } = {},
): Float32Array {
  const hook = sae.cfg.hookName;
  const { model } = engine;
  if (!model.hookNames.includes(hook)) throw new Error(`modelDiff: the model has no hook point "${hook}"`);
  const d = model.shape.hiddenSize;
  if (d !== sae.cfg.dIn)
    throw new Error(`modelDiff: the SAE reads d_in ${sae.cfg.dIn}, the model has d_model ${d}`);
  const m = sae.cfg.dSae;
  const batchSize = opts.batchSize ?? 16;
  const pad = engine.tokenizer.padId ?? 0;
  const tokenized = conversations.map((c, i) => {
    const t = tokenizeConversation(engine, c, `conversations[${i}]`);
    if (t.ids.length > model.shape.maxPositions)
      throw new Error(
        `conversations[${i}]: ${t.ids.length} tokens exceed the model's context (${model.shape.maxPositions})`,
      );
    const first = t.answerPositions[0]!;
    const last = t.answerPositions[t.answerPositions.length - 1]!;
    const upTo = (n: number) => Array.from({ length: n }, (_, k) => k);
    const pos =
      positions === "answer" ? t.answerPositions : positions === "prompt" ? upTo(first) : upTo(last + 1);
    return { ids: t.ids, pos };
  });
  const out = new Float32Array(conversations.length * m);
  for (let b0 = 0; b0 < tokenized.length; b0 += batchSize) {
    const chunk = tokenized.slice(b0, b0 + batchSize);
    const T = Math.max(...chunk.map((c) => c.ids.length));
    const batch = chunk.map((c) => [...c.ids, ...new Array<number>(T - c.ids.length).fill(pad)]);
    const act = model.runWithCache(batch, [hook]).cache.get(hook)!.data;
    const n = chunk.reduce((s, c) => s + c.pos.length, 0);
    const rows = new Float32Array(n * d);
    let r = 0;
    chunk.forEach((c, b) => {
      for (const t of c.pos) rows.set(act.subarray((b * T + t) * d, (b * T + t + 1) * d), d * r++);
    });
    const z = sae.encode(rows, n);
    r = 0;
    chunk.forEach((c, b) => {
      const o = (b0 + b) * m;
      for (let k = 0; k < c.pos.length; k++, r++) for (let j = 0; j < m; j++) out[o + j] += z[r * m + j]!;
      for (let j = 0; j < m; j++) out[o + j] /= c.pos.length;
    });
  }
  return out;
}

/** Ranks latents by mean(fineTuned) − mean(base) of per-conversation means; CIs for the `top` ones. */
export function rankLatentDiffs(
  base: Float32Array,
  fineTuned: Float32Array,
  dSae: number,
  opts: { resamples: number; seed: number; top: number },
): LatentDiff[] {
  const n = base.length / dSae;
  if (!Number.isInteger(n) || n < 1 || fineTuned.length !== base.length)
    throw new Error(`modelDiff: ${base.length} vs ${fineTuned.length} values for ${dSae} latents`);
  const meanOf = (xs: Float32Array, j: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[i * dSae + j]!;
    return s / n;
  };
  const all = Array.from({ length: dSae }, (_, j) => {
    const b = meanOf(base, j);
    const f = meanOf(fineTuned, j);
    return { latent: j, base: b, fineTuned: f, delta: f - b };
  });
  // Ties (e.g. latents dead in both) keep latent order, so the ranking is deterministic.
  all.sort((a, b) => b.delta - a.delta || a.latent - b.latent);
  return all.slice(0, Math.min(opts.top, dSae)).map((e, i) => {
    const diffs = Array.from(
      { length: n },
      (_, c) => fineTuned[c * dSae + e.latent]! - base[c * dSae + e.latent]!,
    );
    // Same seed for every latent: one set of resampled conversations.
    const { ci } = bootstrapMeanCi(diffs, { resamples: opts.resamples, seed: opts.seed });
    return { ...e, ci, rank: i + 1 };
  });
}

/** The model diff: the `top` latents by increase from base to fine-tuned, with bootstrap CIs. */
export function modelDiff(args: {
  sae: SparseAutoencoder;
  base: LocalEngineLike;
  fineTuned: LocalEngineLike;
  conversations: Conversation[];
  /**
   * What the base reads, paired with `conversations` by index (default: the same ones). Each
   * model reading its own answers measures the state it is in while it answers, words included.
   */
  baseConversations?: Conversation[];
  positions: DiffPositions;
  resamples: number;
  seed: number;
  top: number;
}): LatentDiff[] {
  if (args.conversations.length === 0) throw new Error("modelDiff: no conversations");
  const baseReads = args.baseConversations ?? args.conversations;
  if (baseReads.length !== args.conversations.length)
    throw new Error(
      `modelDiff: ${baseReads.length} base conversations for ${args.conversations.length} fine-tuned ones`,
    );
  const b = conversationLatentMeans(args.sae, args.base, baseReads, args.positions);
  const f = conversationLatentMeans(args.sae, args.fineTuned, args.conversations, args.positions);
  return rankLatentDiffs(b, f, args.sae.cfg.dSae, args);
}
