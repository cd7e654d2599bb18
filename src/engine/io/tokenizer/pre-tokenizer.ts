// HF pre-tokenizers: split normalized text into pieces (with their offsets in the source
// text) that the model tokenizes independently. ByteLevel turns a piece into its byte-level
// characters, after which one character = one UTF-8 byte of the source piece.

import { bytesToUnicode } from "./byte-level.ts";
import { TokenizerError } from "./errors.ts";
import { metaspacePreTokenizer, parseMetaspace } from "./metaspace.ts";
import { GPT2_PATTERN, onigToJsRegExp } from "./onig-regex.ts";
import type { Piece, PreTokenize } from "./piece.ts";

export type { Piece, PreTokenize } from "./piece.ts";

type Behavior = "Isolated" | "Removed" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

function splitByRegExp(re: RegExp, behavior: Behavior, invert: boolean): PreTokenize {
  return (pieces) => {
    const out: Piece[] = [];
    for (const p of pieces) {
      // Matches and the gaps between them, in order.
      const parts: { s: number; e: number; isMatch: boolean }[] = [];
      let last = 0;
      re.lastIndex = 0;
      for (const m of p.src.matchAll(re)) {
        const s = m.index!;
        const e = s + m[0].length;
        if (e === s) continue;
        if (s > last) parts.push({ s: last, e: s, isMatch: false });
        parts.push({ s, e, isMatch: true });
        last = e;
      }
      if (last < p.src.length) parts.push({ s: last, e: p.src.length, isMatch: false });
      const keep = (isMatch: boolean) => (invert ? !isMatch : isMatch);
      let merged: { s: number; e: number }[] = [];
      if (behavior === "Isolated") merged = parts;
      else if (behavior === "Removed") merged = parts.filter((x) => !keep(x.isMatch));
      else if (behavior === "MergedWithPrevious") {
        for (const x of parts) {
          if (keep(x.isMatch) && merged.length > 0) merged[merged.length - 1].e = x.e;
          else merged.push({ ...x });
        }
      } else if (behavior === "MergedWithNext") {
        let pending: { s: number; e: number } | undefined;
        for (const x of parts) {
          if (keep(x.isMatch)) pending = pending ? { s: pending.s, e: x.e } : { ...x };
          else {
            merged.push(pending ? { s: pending.s, e: x.e } : { ...x });
            pending = undefined;
          }
        }
        if (pending) merged.push(pending);
      } else {
        for (const x of parts) {
          const prev = merged[merged.length - 1] as { s: number; e: number; m?: boolean } | undefined;
          if (prev && keep(x.isMatch) && prev.m) prev.e = x.e;
          else merged.push({ s: x.s, e: x.e, m: keep(x.isMatch) } as { s: number; e: number });
        }
      }
      for (const x of merged) {
        const src = p.src.slice(x.s, x.e);
        out.push({
          text: src,
          src,
          start: p.start + x.s,
          byteMapped: false,
          prefixAdded: false,
          atInputStart: p.atInputStart,
        });
      }
    }
    return out;
  };
}

const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";

export function buildPreTokenizer(
  spec: unknown,
  file: string,
  field = "pre_tokenizer",
): PreTokenize | undefined {
  if (spec == null) return undefined;
  const s = spec as Record<string, unknown>;
  switch (s.type) {
    case "Sequence": {
      const steps = ((s.pretokenizers as unknown[]) ?? []).map((p, i) =>
        buildPreTokenizer(p, file, `${field}.pretokenizers[${i}]`),
      );
      return (pieces) => steps.reduce((acc, f) => (f ? f(acc) : acc), pieces);
    }
    case "Split": {
      const pat = s.pattern as { Regex?: string; String?: string } | undefined;
      let re: RegExp;
      try {
        if (typeof pat?.Regex === "string") re = onigToJsRegExp(pat.Regex);
        else if (typeof pat?.String === "string")
          re = new RegExp(pat.String.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gu");
        else throw new Error("pattern must be {Regex} or {String}");
      } catch (e) {
        throw new TokenizerError(file, `${field}.pattern`, (e as Error).message);
      }
      const behavior = (s.behavior as Behavior) ?? "Isolated";
      if (!["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"].includes(behavior)) {
        throw new TokenizerError(file, `${field}.behavior`, `unknown split behavior "${behavior}"`);
      }
      return splitByRegExp(re, behavior, s.invert === true);
    }
    case "ByteLevel": {
      const addPrefixSpace = s.add_prefix_space === true;
      const split =
        s.use_regex !== false ? splitByRegExp(onigToJsRegExp(GPT2_PATTERN), "Isolated", false) : undefined;
      return (pieces) => {
        const withPrefix = pieces.map((p) => {
          if (!addPrefixSpace || p.src.startsWith(" ")) return p;
          return { ...p, src: ` ${p.src}`, prefixAdded: true };
        });
        const splitted = split
          ? withPrefix.flatMap((p) => {
              const sub = split([{ ...p, start: 0 }]);
              // Offsets: the added prefix space is not in the source, so shift back by one.
              const shift = p.prefixAdded ? 1 : 0;
              return sub.map((q, i) => ({
                ...q,
                start: p.start + Math.max(0, q.start - shift),
                src: i === 0 && shift ? q.src.slice(1) : q.src,
                prefixAdded: i === 0 && p.prefixAdded,
              }));
            })
          : withPrefix.map((p) => (p.prefixAdded ? { ...p, src: p.src.slice(1) } : p));
        return splitted.map((p) => ({
          ...p,
          text: bytesToUnicode(p.prefixAdded ? ` ${p.src}` : p.src),
          byteMapped: true,
        }));
      };
    }
    case "Whitespace":
      // Keeps the matches, drops what lies between (HF: Split(Invert(re), Removed)).
      return splitByRegExp(onigToJsRegExp(`[${WORD}]+|[^${WORD}\\s]+`), "Removed", true);
    case "WhitespaceSplit":
      // Rust's char::is_whitespace is Unicode White_Space, as is Oniguruma's \s.
      return splitByRegExp(onigToJsRegExp("\\s+"), "Removed", false);
    case "Metaspace":
      return metaspacePreTokenizer(parseMetaspace(s, file, field));
    case "Digits":
      return splitByRegExp(s.individual_digits ? /\p{N}/gu : /\p{N}+/gu, "Isolated", false);
    default:
      throw new TokenizerError(file, `${field}.type`, `unsupported pre-tokenizer "${String(s.type)}"`);
  }
}
