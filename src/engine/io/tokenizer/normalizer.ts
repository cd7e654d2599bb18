// HF tokenizers normalizers that Llama-family tokenizers use (Qwen2: NFC; Llama 3: none).

import { TokenizerError } from "./errors.ts";
import { onigToJsRegExp } from "./onig-regex.ts";

const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const LEADING_WS = new RegExp(`^[${WS}]+`, "u");
const TRAILING_WS = new RegExp(`[${WS}]+$`, "u");
const CHUNK = /\P{M}\p{M}*|\p{M}+/gsu;

export type Normalize = (text: string) => string;

/**
 * Where a Replace pattern matches: leftmost, non-overlapping; a String literally, a Regex as
 * Oniguruma reads it (empty matches are skipped).
 */
export function replaceMatcher(
  pattern: unknown,
  file: string,
  field: string,
): (t: string) => [number, number][] {
  const pat = pattern as { String?: unknown; Regex?: unknown } | undefined;
  if (typeof pat?.String === "string") {
    const from = pat.String;
    if (from.length === 0) throw new TokenizerError(file, field, "empty String pattern");
    return (t) => {
      const out: [number, number][] = [];
      for (let p = t.indexOf(from); p >= 0; p = t.indexOf(from, p + from.length))
        out.push([p, p + from.length]);
      return out;
    };
  }
  if (typeof pat?.Regex === "string") {
    let re: RegExp;
    try {
      re = onigToJsRegExp(pat.Regex, "gu");
    } catch (e) {
      throw new TokenizerError(file, field, (e as Error).message);
    }
    return (t) => {
      const out: [number, number][] = [];
      for (const m of t.matchAll(re)) if (m[0].length > 0) out.push([m.index, m.index + m[0].length]);
      return out;
    };
  }
  throw new TokenizerError(file, field, "must be {String} or {Regex}");
}

export function buildNormalizer(spec: unknown, file: string, field = "normalizer"): Normalize | undefined {
  if (spec == null) return undefined;
  const s = spec as {
    type?: string;
    normalizers?: unknown[];
    pattern?: { String?: string };
    content?: string;
  };
  switch (s.type) {
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = s.type;
      return (t) => t.normalize(form);
    }
    case "Lowercase":
      return (t) => t.toLowerCase();
    case "Strip": {
      // Rust's trim: Unicode White_Space (JS trim also strips U+FEFF and misses U+0085).
      const left = (s as { strip_left?: boolean }).strip_left !== false;
      const right = (s as { strip_right?: boolean }).strip_right !== false;
      return (t) => {
        let out = t;
        if (left) out = out.replace(LEADING_WS, "");
        if (right) out = out.replace(TRAILING_WS, "");
        return out;
      };
    }
    case "Prepend": {
      const prepend = (s as { prepend?: unknown }).prepend;
      if (typeof prepend !== "string") throw new TokenizerError(file, `${field}.prepend`, "must be a string");
      // HF prepends only to non-empty text.
      return (t) => (t.length > 0 ? prepend + t : t);
    }
    case "Replace": {
      const to = s.content ?? "";
      if (typeof s.pattern?.String === "string") {
        const from = s.pattern.String;
        return (t) => t.split(from).join(to);
      }
      const matches = replaceMatcher(s.pattern, file, `${field}.pattern`);
      return (t) => {
        let out = "";
        let i = 0;
        for (const [a, b] of matches(t)) {
          out += t.slice(i, a) + to;
          i = b;
        }
        return out + t.slice(i);
      };
    }
    case "Sequence": {
      const steps = (s.normalizers ?? [])
        .map((n, i) => buildNormalizer(n, file, `${field}.normalizers[${i}]`))
        .filter((n): n is Normalize => n !== undefined);
      return (t) => steps.reduce((acc, f) => f(acc), t);
    }
    default:
      throw new TokenizerError(file, `${field}.type`, `unsupported normalizer "${s.type}"`);
  }
}

/**
 * The normalized text with, for each UTF-16 unit, the span [start, end) of the source it came
 * from (as HF's NormalizedString alignments), for offsets through normalizers that rewrite.
 */
export interface Aligned {
  text: string;
  starts: number[];
  ends: number[];
}

/** Undefined when this step cannot say where its output came from (then offsets are coarse). */
export type AlignedNormalize = (a: Aligned) => Aligned | undefined;

/** Each unit aligned to its own character (a surrogate pair's two units to the pair). */
export function identityAlignment(text: string): Aligned {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < text.length; ) {
    const n = text.codePointAt(i)! > 0xffff ? 2 : 1;
    for (let k = 0; k < n; k++) {
      starts.push(i);
      ends.push(i + n);
    }
    i += n;
  }
  return { text, starts, ends };
}

function sliceAligned(a: Aligned, from: number, to: number): Aligned {
  return { text: a.text.slice(from, to), starts: a.starts.slice(from, to), ends: a.ends.slice(from, to) };
}

/**
 * The normalizer as an alignment-tracking step: Replace (String), Prepend and Strip track where
 * each unit came from (an inserted prefix takes the first character's span, as in HF); the
 * others only when they leave the text unchanged.
 */
export function buildAlignedNormalizer(spec: unknown): AlignedNormalize | undefined {
  if (spec == null) return undefined;
  const s = spec as Record<string, unknown>;
  switch (s.type) {
    case "Strip": {
      const left = s.strip_left !== false;
      const right = s.strip_right !== false;
      return (a) => {
        const l = left ? (a.text.match(LEADING_WS)?.[0].length ?? 0) : 0;
        const r = right ? (a.text.slice(l).match(TRAILING_WS)?.[0].length ?? 0) : 0;
        return sliceAligned(a, l, a.text.length - r);
      };
    }
    case "Prepend": {
      const prepend = s.prepend as string;
      return (a) => {
        if (a.text.length === 0) return a;
        const n = prepend.length;
        return {
          text: prepend + a.text,
          starts: [...Array(n).fill(a.starts[0]), ...a.starts],
          ends: [...Array(n).fill(a.ends[0]), ...a.ends],
        };
      };
    }
    case "Replace": {
      let matches: (t: string) => [number, number][];
      try {
        matches = replaceMatcher(s.pattern, "(aligned)", "pattern");
      } catch {
        return () => undefined;
      }
      const to = typeof s.content === "string" ? s.content : "";
      return (a) => {
        const out: Aligned = { text: "", starts: [], ends: [] };
        let i = 0;
        for (const [p, q] of matches(a.text)) {
          const keep = sliceAligned(a, i, p);
          out.text += keep.text + to;
          out.starts.push(...keep.starts);
          out.ends.push(...keep.ends);
          // As in HF, the match is removed and the content inserted after it: every new unit
          // takes the span of the match's last character.
          for (let k = 0; k < to.length; k++) {
            out.starts.push(a.starts[q - 1]);
            out.ends.push(a.ends[q - 1]);
          }
          i = q;
        }
        const rest = sliceAligned(a, i, a.text.length);
        out.text += rest.text;
        out.starts.push(...rest.starts);
        out.ends.push(...rest.ends);
        return out;
      };
    }
    case "Sequence": {
      const steps = ((s.normalizers as unknown[]) ?? []).map((n) => buildAlignedNormalizer(n));
      return (a) => {
        let cur: Aligned | undefined = a;
        for (const f of steps) {
          if (!cur) return undefined;
          if (f) cur = f(cur);
        }
        return cur;
      };
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = s.type;
      return (a) => {
        const full = a.text.normalize(form);
        if (full === a.text) return a;
        // Character by character (a base with its combining marks): an output character takes
        // the span of the source character at its place (a composition keeps the base's, as in
        // HF); an expansion spreads over the whole chunk. Where chunks do not compose the way
        // the whole text does (Hangul jamo), there is no alignment.
        const out: Aligned = { text: "", starts: [], ends: [] };
        for (const m of a.text.matchAll(CHUNK)) {
          const src = [...m[0]];
          const dst = [...m[0].normalize(form)];
          const pos: number[] = [];
          let u = m.index;
          for (const c of src) {
            pos.push(u);
            u += c.length;
          }
          dst.forEach((c, k) => {
            const st = dst.length <= src.length ? a.starts[pos[k]] : a.starts[m.index];
            const en = dst.length <= src.length ? a.ends[pos[k] + src[k].length - 1] : a.ends[u - 1];
            out.text += c;
            for (let j = 0; j < c.length; j++) {
              out.starts.push(st);
              out.ends.push(en);
            }
          });
        }
        return out.text === full ? out : undefined;
      };
    }
    default: {
      const plain = buildNormalizer(spec, "(aligned)");
      return (a) => (plain && plain(a.text) === a.text ? a : undefined);
    }
  }
}
