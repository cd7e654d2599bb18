// HF added tokens (special tokens like <|im_start|> and user-added ones) are cut out of the
// raw text before normalization and pre-tokenization: leftmost-longest match, honouring
// single_word / lstrip / rstrip.

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
}

export type Segment =
  | { kind: "added"; id: number; start: number; end: number }
  | { kind: "text"; start: number; end: number };

const WORD_CHAR = /[\p{L}\p{N}_]/u;
const SPACE = /\s/u;

export class AddedTokenMatcher {
  private readonly byFirst = new Map<string, AddedToken[]>();

  constructor(readonly tokens: AddedToken[]) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      const first = t.content[0];
      if (!this.byFirst.has(first)) this.byFirst.set(first, []);
      this.byFirst.get(first)!.push(t);
    }
    for (const list of this.byFirst.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  split(text: string): Segment[] {
    const out: Segment[] = [];
    let textStart = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.matchAt(text, i);
      if (!match) {
        i++;
        continue;
      }
      let s = i;
      let e = i + match.content.length;
      if (match.lstrip) while (s > textStart && SPACE.test(text[s - 1])) s--;
      if (match.rstrip) while (e < text.length && SPACE.test(text[e])) e++;
      if (s > textStart) out.push({ kind: "text", start: textStart, end: s });
      out.push({ kind: "added", id: match.id, start: s, end: e });
      textStart = e;
      i = e;
    }
    if (textStart < text.length) out.push({ kind: "text", start: textStart, end: text.length });
    return out;
  }

  private matchAt(text: string, i: number): AddedToken | undefined {
    const candidates = this.byFirst.get(text[i]);
    if (!candidates) return undefined;
    for (const t of candidates) {
      if (!text.startsWith(t.content, i)) continue;
      if (t.singleWord) {
        const before = i > 0 ? text[i - 1] : "";
        const after = text[i + t.content.length] ?? "";
        if ((before && WORD_CHAR.test(before)) || (after && WORD_CHAR.test(after))) continue;
      }
      return t;
    }
    return undefined;
  }
}
