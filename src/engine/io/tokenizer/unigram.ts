// HF `Unigram` model (SentencePiece unigram LM): the segmentation of a piece that maximizes
// the sum of the pieces' log-probabilities (Viterbi over every vocabulary entry that matches
// at each character). A character no entry covers alone may be reached by an unknown node
// scored min_score - 10; consecutive unknowns are fused into one token (HF always fuses).
// A token that is not in the vocabulary (an unknown run) becomes its `<0xNN>` byte tokens with
// byte_fallback (when all exist), else `unk_id`.

import { type ModelToken, TokenizeCache, type TokenModel } from "./bpe.ts";
import { byteFallbackIds } from "./byte-fallback.ts";
import { TokenizerError } from "./errors.ts";

const UNK_PENALTY = 10;

interface TrieNode {
  next: Map<string, TrieNode>;
  /** Vocabulary id when a piece ends here. */
  id?: number;
}

export class UnigramModel implements TokenModel {
  readonly vocab = new Map<string, number>();
  readonly pieces: string[] = [];
  readonly scores: number[] = [];
  readonly unkId?: number;
  readonly byteFallback: boolean;
  private readonly minScore: number;
  private readonly trie: TrieNode = { next: new Map() };
  private cache = new TokenizeCache();

  constructor(
    vocab: unknown,
    opts: { unkId?: number | null; byteFallback?: boolean } = {},
    file = "tokenizer.json",
  ) {
    if (!Array.isArray(vocab))
      throw new TokenizerError(file, "model.vocab", "Unigram needs [piece, score] pairs");
    vocab.forEach((entry, id) => {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
        throw new TokenizerError(file, `model.vocab[${id}]`, `malformed entry ${JSON.stringify(entry)}`);
      }
      const [piece, score] = entry as [string, number];
      this.pieces.push(piece);
      this.scores.push(score);
      // Like HF's HashMap insert, a repeated piece maps to its last id.
      this.vocab.set(piece, id);
    });
    for (const [piece, id] of this.vocab) {
      let node = this.trie;
      for (const ch of piece) {
        let n = node.next.get(ch);
        if (!n) {
          n = { next: new Map() };
          node.next.set(ch, n);
        }
        node = n;
      }
      node.id = id;
    }
    this.minScore = this.scores.reduce((m, s) => Math.min(m, s), Number.POSITIVE_INFINITY);
    const unkId = opts.unkId ?? undefined;
    if (unkId !== undefined && (unkId < 0 || unkId >= this.pieces.length || !Number.isInteger(unkId))) {
      throw new TokenizerError(file, "model.unk_id", `${unkId} is not an id of the vocab`);
    }
    this.unkId = unkId;
    this.byteFallback = opts.byteFallback === true;
  }

  get size(): number {
    return this.pieces.length;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.pieces[id];
  }

  tokenize(text: string): ModelToken[] {
    return this.cache.get(text, () => this.tokenizeUncached(text));
  }

  /** HF's encode_optimized: best path by dynamic programming over character positions. */
  private segment(text: string): [number, number][] {
    const n = text.length;
    const score = new Float64Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const nodeId = new Int32Array(n + 1).fill(-1);
    const unkScore = this.minScore - UNK_PENALTY;
    for (let s = 0; s < n; ) {
      const base = score[s];
      const cp = text.codePointAt(s)!;
      const charEnd = s + (cp > 0xffff ? 2 : 1);
      let single = false;
      let node: TrieNode | undefined = this.trie;
      for (let i = s; i < n && node; ) {
        const c = text.codePointAt(i)!;
        const w = c > 0xffff ? 2 : 1;
        node = node.next.get(text.slice(i, i + w));
        i += w;
        if (node?.id !== undefined) {
          const cand = base + this.scores[node.id];
          if (from[i] < 0 || cand > score[i]) {
            score[i] = cand;
            from[i] = s;
            nodeId[i] = node.id;
          }
          if (i === charEnd) single = true;
        }
      }
      if (!single) {
        if (this.unkId === undefined)
          throw new Error("Unigram: a character is not in the vocabulary and there is no unk_id");
        const cand = base + unkScore;
        if (from[charEnd] < 0 || cand > score[charEnd]) {
          score[charEnd] = cand;
          from[charEnd] = s;
          nodeId[charEnd] = this.unkId;
        }
      }
      s = charEnd;
    }
    // Back from the end; runs of unknown nodes fuse.
    const spans: [number, number][] = [];
    let unkEnd = -1;
    for (let e = n; e > 0; ) {
      const s = from[e];
      if (nodeId[e] === this.unkId) {
        if (unkEnd < 0) unkEnd = e;
      } else {
        if (unkEnd >= 0) spans.push([e, unkEnd]);
        unkEnd = -1;
        spans.push([s, e]);
      }
      e = s;
    }
    if (unkEnd >= 0) spans.push([0, unkEnd]);
    return spans.reverse();
  }

  private tokenizeUncached(text: string): ModelToken[] {
    if (text.length === 0) return [];
    const out: ModelToken[] = [];
    for (const [start, end] of this.segment(text)) {
      const piece = text.slice(start, end);
      const id = this.vocab.get(piece);
      if (id !== undefined) {
        out.push({ id, start, end });
        continue;
      }
      const bytes = this.byteFallback ? byteFallbackIds(piece, this.vocab) : undefined;
      if (bytes) {
        for (const b of bytes) out.push({ id: b.id, start, end });
        continue;
      }
      if (this.unkId === undefined) throw new Error("Unigram: no unk_id for an unknown piece");
      out.push({ id: this.unkId, start, end });
    }
    return out;
  }
}
