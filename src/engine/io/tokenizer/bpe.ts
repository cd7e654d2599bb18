// HF `BPE` model: a word (one pre-tokenized piece) starts as single characters and the
// adjacent pair with the lowest merge rank is merged, leftmost first, until no pair has a
// rank. With `ignore_merges` (Llama 3) a word already in the vocabulary is one token.
// SentencePiece-style BPE (Llama 2, Mistral, Gemma) adds `byte_fallback` (a character not in
// the vocabulary becomes its `<0xNN>` byte tokens, before merging) and `fuse_unk` (a run of
// unknown characters is one unk token).

import { byteFallbackIds } from "./byte-fallback.ts";
import { TokenizerError } from "./errors.ts";

export interface ModelToken {
  id: number;
  /** Offsets in the piece text's UTF-16 units. */
  start: number;
  end: number;
}

/** A model's tokens per pre-tokenized piece, kept (up to 50,000 pieces) since text repeats. */
export class TokenizeCache {
  private readonly map = new Map<string, ModelToken[]>();
  get(text: string, tokenize: () => ModelToken[]): ModelToken[] {
    const hit = this.map.get(text);
    if (hit) return hit;
    const out = tokenize();
    if (this.map.size > 50_000) this.map.clear();
    this.map.set(text, out);
    return out;
  }
}

export interface TokenModel {
  tokenize(text: string): ModelToken[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Largest id + 1. */
  size: number;
}

export class BpeModel implements TokenModel {
  readonly vocab: Map<string, number>;
  readonly idToTok: string[] = [];
  /** "a b" -> rank. */
  readonly ranks = new Map<string, number>();
  readonly merges: [string, string][];
  readonly ignoreMerges: boolean;
  readonly unkToken?: string;
  readonly byteFallback: boolean;
  readonly fuseUnk: boolean;
  private cache = new TokenizeCache();

  constructor(
    vocab: Record<string, number>,
    merges: [string, string][],
    opts: {
      ignoreMerges?: boolean;
      unkToken?: string | null;
      byteFallback?: boolean;
      fuseUnk?: boolean;
    } = {},
    file = "tokenizer.json",
  ) {
    this.vocab = new Map(Object.entries(vocab));
    for (const [tok, id] of this.vocab) this.idToTok[id] = tok;
    this.merges = merges;
    merges.forEach(([a, b], rank) => {
      if (!this.vocab.has(a + b)) {
        throw new TokenizerError(
          file,
          `model.merges[${rank}]`,
          `merge "${a} ${b}" makes "${a + b}", not in vocab`,
        );
      }
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.ignoreMerges = opts.ignoreMerges === true;
    this.unkToken = opts.unkToken ?? undefined;
    this.byteFallback = opts.byteFallback === true;
    this.fuseUnk = opts.fuseUnk === true;
    if (
      (this.byteFallback || this.fuseUnk) &&
      this.unkToken !== undefined &&
      !this.vocab.has(this.unkToken)
    ) {
      throw new TokenizerError(file, "model.unk_token", `"${this.unkToken}" is not in the vocab`);
    }
  }

  get size(): number {
    return this.idToTok.length;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTok[id];
  }

  tokenize(text: string): ModelToken[] {
    return this.cache.get(text, () => this.tokenizeUncached(text));
  }

  private tokenizeUncached(text: string): ModelToken[] {
    if (text.length === 0) return [];
    if (this.ignoreMerges) {
      const id = this.vocab.get(text);
      if (id !== undefined) return [{ id, start: 0, end: text.length }];
    }
    if (this.byteFallback || this.fuseUnk) return this.tokenizeSentencePiece(text);
    const syms: string[] = [];
    const starts: number[] = [];
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const n = cp > 0xffff ? 2 : 1;
      syms.push(text.slice(i, i + n));
      starts.push(i);
      i += n;
    }
    const merged =
      syms.length <= 48 ? mergeQuadratic(this.ranks, syms, starts) : mergeWithHeap(this.ranks, syms, starts);
    const out: ModelToken[] = [];
    for (let i = 0; i < merged.length; i++) {
      const [sym, start] = merged[i];
      const end = i + 1 < merged.length ? merged[i + 1][1] : text.length;
      let id = this.vocab.get(sym);
      if (id === undefined && this.unkToken !== undefined) id = this.vocab.get(this.unkToken);
      if (id === undefined) {
        throw new Error(
          `BPE: symbol ${JSON.stringify(sym)} is not in the vocabulary and there is no unk_token`,
        );
      }
      // HF fuses nothing by default; consecutive unknowns stay separate tokens.
      out.push({ id, start, end });
    }
    return out;
  }

  /**
   * HF's merge_word with byte_fallback / fuse_unk: characters are mapped to vocabulary symbols
   * first (a known character; else its byte tokens; else unk, fused with a pending unk), then
   * merged. A character with no symbol and no unk_token is dropped, as in HF.
   */
  private tokenizeSentencePiece(text: string): ModelToken[] {
    const syms: string[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    let unk: { start: number; end: number } | undefined;
    const flushUnk = () => {
      if (!unk) return;
      syms.push(this.unkToken!);
      starts.push(unk.start);
      ends.push(unk.end);
      unk = undefined;
    };
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i)!;
      const n = cp > 0xffff ? 2 : 1;
      const ch = text.slice(i, i + n);
      const start = i;
      i += n;
      if (this.vocab.has(ch)) {
        flushUnk();
        syms.push(ch);
        starts.push(start);
        ends.push(i);
        continue;
      }
      const bytes = this.byteFallback ? byteFallbackIds(ch, this.vocab) : undefined;
      if (bytes) {
        // HF adds the byte tokens without flushing a pending unk first (it comes later).
        for (const b of bytes) {
          syms.push(b.token);
          starts.push(start);
          ends.push(i);
        }
        continue;
      }
      if (this.unkToken === undefined) continue;
      if (unk && this.fuseUnk) unk.end = i;
      else {
        flushUnk();
        unk = { start, end: i };
      }
    }
    flushUnk();
    if (syms.length === 0) return [];
    // Merge on symbol strings; the byte tokens' spans are their character's, so track ends too.
    const index = syms.map((_, k) => k);
    const order =
      syms.length <= 48 ? mergeQuadratic(this.ranks, syms, index) : mergeWithHeap(this.ranks, syms, index);
    const out: ModelToken[] = [];
    for (let k = 0; k < order.length; k++) {
      const [sym, first] = order[k];
      const last = k + 1 < order.length ? order[k + 1][1] - 1 : syms.length - 1;
      const id = this.vocab.get(sym);
      if (id === undefined)
        throw new Error(`BPE: merged symbol ${JSON.stringify(sym)} is not in the vocabulary`);
      out.push({ id, start: starts[first], end: ends[last] });
    }
    return out;
  }
}

/** The lowest-rank adjacent pair, leftmost on ties, merged until none is left: O(n²), fast for short words. */
export function mergeQuadratic(
  ranks: Map<string, number>,
  symsIn: string[],
  startsIn: number[],
): [string, number][] {
  const syms = symsIn.slice();
  const starts = startsIn.slice();
  for (;;) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = ranks.get(`${syms[i]} ${syms[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    syms.splice(best, 2, syms[best] + syms[best + 1]);
    starts.splice(best + 1, 1);
  }
  return syms.map((sym, i) => [sym, starts[i]]);
}

/**
 * The same merge order with a priority queue of (rank, position) over a linked list of
 * symbols, as HF does: O(n log n), for long words (a 10k-character run stays fast).
 */
export function mergeWithHeap(
  ranks: Map<string, number>,
  symsIn: string[],
  starts: number[],
): [string, number][] {
  const n = symsIn.length;
  const sym = symsIn.slice();
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Binary min-heap of [rank, pos], compared by rank then position (leftmost first).
  const heapRank: number[] = [];
  const heapPos: number[] = [];
  const less = (a: number, b: number) =>
    heapRank[a] < heapRank[b] || (heapRank[a] === heapRank[b] && heapPos[a] < heapPos[b]);
  const swap = (a: number, b: number) => {
    [heapRank[a], heapRank[b]] = [heapRank[b], heapRank[a]];
    [heapPos[a], heapPos[b]] = [heapPos[b], heapPos[a]];
  };
  const push = (rank: number, pos: number) => {
    heapRank.push(rank);
    heapPos.push(pos);
    let i = heapRank.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const pop = (): [number, number] => {
    const top: [number, number] = [heapRank[0], heapPos[0]];
    const lastRank = heapRank.pop()!;
    const lastPos = heapPos.pop()!;
    if (heapRank.length > 0) {
      heapRank[0] = lastRank;
      heapPos[0] = lastPos;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heapRank.length && less(l, m)) m = l;
        if (r < heapRank.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
    return top;
  };
  const pushPair = (i: number) => {
    const j = next[i];
    if (j < 0) return;
    const r = ranks.get(`${sym[i]} ${sym[j]}`);
    if (r !== undefined) push(r, i);
  };
  for (let i = 0; i + 1 < n; i++) pushPair(i);
  while (heapRank.length > 0) {
    const [rank, i] = pop();
    const j = next[i];
    // Stale entries: the left symbol was absorbed, or its pair changed since it was queued
    // (a rank names exactly one pair, so an unchanged rank means an unchanged pair).
    if (!alive[i] || j < 0 || ranks.get(`${sym[i]} ${sym[j]}`) !== rank) continue;
    sym[i] += sym[j];
    alive[j] = 0;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) pushPair(prev[i]);
    pushPair(i);
  }
  const out: [string, number][] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push([sym[i], starts[i]]);
  return out;
}

/** tokenizer.json stores merges as "a b" strings (older) or [a, b] pairs (newer). */
export function parseMerges(raw: unknown, file: string): [string, string][] {
  if (!Array.isArray(raw)) throw new TokenizerError(file, "model.merges", "must be an array");
  return raw.map((m, i) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return [m[0], m[1]];
    }
    if (typeof m === "string") {
      const sp = m.indexOf(" ", 1);
      if (sp > 0) return [m.slice(0, sp), m.slice(sp + 1)];
    }
    throw new TokenizerError(file, `model.merges[${i}]`, `malformed merge ${JSON.stringify(m)}`);
  });
}
