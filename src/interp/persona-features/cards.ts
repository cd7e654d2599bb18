/**
 * Latent cards (Wang et al. 2025 §3.2): where an SAE latent fires in the pretraining corpus —
 * its top token contexts and who speaks there, against the corpus's token-level speaker base
 * rate — its activation histogram, and the tokens its decoder direction promotes / suppresses
 * through the unembedding.
 */
import type { SparseAutoencoder } from "../../engine/sae/index.ts";
import {
  type CorpusOptions,
  type CorpusSpec,
  corpusActivations,
  HARMFUL_SPEAKERS,
  type LocalEngineLike,
  type SpeakerType,
} from "./corpus.ts";

export interface LatentContext {
  doc: number;
  pos: number;
  activation: number;
  speaker: SpeakerType;
  /** The tokens of the window around the context's token. */
  tokens: string[];
  /** Index in `tokens` of the context's token. */
  highlight: number;
}

export interface LatentCard {
  latent: number;
  topContexts: LatentContext[];
  /** Non-zero activations in `bins` equal bins from 0 to the maximum; `zeros` = tokens at 0. */
  histogram: { edges: number[]; counts: number[]; zeros: number };
  promotedTokens: Array<{ token: string; logit: number }>;
  suppressedTokens: Array<{ token: string; logit: number }>;
  /** Share of the top contexts by speaker (sums to 1). */
  speakerMix: Partial<Record<SpeakerType, number>>;
  /** Share of all corpus tokens by speaker (sums to 1). */
  baseRate: Partial<Record<SpeakerType, number>>;
  /** Null when the latent has no contexts (never fires on the corpus). */
  harmfulShare: number | null;
  harmfulBaseRate: number;
}

const HARMFUL = new Set<SpeakerType>(HARMFUL_SPEAKERS);

/**
 * Logits of the decoder direction through the model's readout: W_U · (g ⊙ W_dec[latent]), g the
 * final RMSNorm gain (the direction as the unembedding sees it), W_U the lm_head (the embedding
 * when tied). Top and bottom `count` tokens, special tokens left out.
 */
export function decoderLogits(
  engine: LocalEngineLike,
  sae: SparseAutoencoder,
  latent: number,
  count = 10,
): {
  promoted: Array<{ token: string; logit: number }>;
  suppressed: Array<{ token: string; logit: number }>;
} {
  const { model, tokenizer } = engine;
  const s = model.shape;
  const head = (
    s.tieWordEmbeddings ? model.param("model.embed_tokens.weight") : model.param("lm_head.weight")
  ).data;
  const gain = model.param("model.norm.weight").data;
  const dir = sae.decoderDirection(latent);
  const d = s.hiddenSize;
  const v = new Float32Array(d);
  for (let j = 0; j < d; j++) v[j] = dir[j]! * gain[j]!;
  const logits: Array<{ token: string; logit: number; id: number }> = [];
  for (let t = 0; t < s.vocabSize; t++) {
    if (tokenizer.specialIds.has(t)) continue;
    let x = 0;
    for (let j = 0; j < d; j++) x += head[t * d + j]! * v[j]!;
    logits.push({ token: tokenizer.idToToken(t) ?? `#${t}`, logit: x, id: t });
  }
  logits.sort((a, b) => b.logit - a.logit || a.id - b.id);
  const strip = (e: { token: string; logit: number }) => ({ token: e.token, logit: e.logit });
  return {
    promoted: logits.slice(0, count).map(strip),
    suppressed: logits.slice(-count).reverse().map(strip),
  };
}

function shares(counts: Map<SpeakerType, number>, total: number): Partial<Record<SpeakerType, number>> {
  const out: Partial<Record<SpeakerType, number>> = {};
  for (const [k, c] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) if (c > 0) out[k] = c / total;
  return out;
}

const harmfulOf = (mix: Partial<Record<SpeakerType, number>>) =>
  Object.entries(mix).reduce((s, [k, v]) => s + (HARMFUL.has(k as SpeakerType) ? (v ?? 0) : 0), 0);

/** Cards of `latents` over the corpus: one pass, every token encoded by the SAE. */
export async function latentCards(args: {
  engine: LocalEngineLike;
  sae: SparseAutoencoder;
  corpus: CorpusSpec;
  latents: number[];
  /** Top contexts per latent (default 100). */
  top?: number;
  /** Tokens either side of a context's token (default 8). */
  window?: number;
  /** Histogram bins (default 20). */
  bins?: number;
  corpusOptions?: CorpusOptions;
}): Promise<LatentCard[]> {
  const { engine, sae, latents } = args;
  const top = args.top ?? 100;
  const window = args.window ?? 8;
  const bins = args.bins ?? 20;
  const m = sae.cfg.dSae;
  for (const l of latents)
    if (!Number.isInteger(l) || l < 0 || l >= m)
      throw new Error(`latentCards: latent ${l} is not in 0..${m - 1}`);
  const base = new Map<SpeakerType, number>();
  let tokens = 0;
  type Entry = Omit<LatentContext, "tokens" | "highlight"> & { ids: number[]; at: number };
  // Per latent: its best contexts so far (kept sorted, at most `top`) and its non-zero values.
  const best = latents.map(() => [] as Entry[]);
  const nonzero = latents.map(() => [] as number[]);
  const better = (a: Entry, b: Entry) => b.activation - a.activation || a.doc - b.doc || a.pos - b.pos;
  for await (const batch of corpusActivations(engine, sae.cfg.hookName, args.corpus, args.corpusOptions)) {
    const z = sae.encode(batch.rows, batch.n);
    tokens += batch.n;
    for (const c of batch.contexts) base.set(c.speaker, (base.get(c.speaker) ?? 0) + 1);
    // Rows come document by document, each from its position 0.
    let docIdx = -1;
    for (let i = 0; i < batch.n; i++) {
      const c = batch.contexts[i]!;
      if (c.pos === 0) docIdx++;
      latents.forEach((l, li) => {
        const a = z[i * m + l]!;
        if (a <= 0) return;
        nonzero[li]!.push(a);
        const list = best[li]!;
        if (list.length >= top && a <= list[list.length - 1]!.activation) return;
        list.push({
          doc: c.doc,
          pos: c.pos,
          activation: a,
          speaker: c.speaker,
          ids: batch.ids[docIdx]!,
          at: c.pos,
        });
        list.sort(better);
        if (list.length > top) list.pop();
      });
    }
  }
  if (tokens === 0) throw new Error("latentCards: the corpus has no tokens");
  const baseRate = shares(base, tokens);
  const harmfulBaseRate = harmfulOf(baseRate);
  const tok = (id: number) => engine.tokenizer.idToToken(id) ?? `#${id}`;
  return latents.map((latent, li) => {
    const list = best[li]!;
    const topContexts = list.map((e) => {
      const lo = Math.max(0, e.at - window);
      const hi = Math.min(e.ids.length, e.at + window + 1);
      return {
        doc: e.doc,
        pos: e.pos,
        activation: e.activation,
        speaker: e.speaker,
        tokens: e.ids.slice(lo, hi).map(tok),
        highlight: e.at - lo,
      };
    });
    const mixCounts = new Map<SpeakerType, number>();
    for (const e of list) mixCounts.set(e.speaker, (mixCounts.get(e.speaker) ?? 0) + 1);
    const speakerMix = list.length ? shares(mixCounts, list.length) : {};
    const values = nonzero[li]!;
    const max = values.reduce((a, b) => Math.max(a, b), 0);
    const edges = Array.from({ length: bins + 1 }, (_, k) => (max * k) / bins);
    const counts = new Array<number>(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v / max) * bins))]++;
    const { promoted, suppressed } = decoderLogits(engine, sae, latent);
    return {
      latent,
      topContexts,
      histogram: { edges, counts, zeros: tokens - values.length },
      promotedTokens: promoted,
      suppressedTokens: suppressed,
      speakerMix,
      baseRate,
      harmfulShare: topContexts.length > 0 ? harmfulOf(speakerMix) : null,
      harmfulBaseRate,
    };
  });
}
