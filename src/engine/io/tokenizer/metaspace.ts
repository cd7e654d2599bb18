// HF `Metaspace` pre-tokenizer and decoder (SentencePiece's "▁" for spaces). The pre-tokenizer
// replaces every " " with the replacement, prepends one to a piece that does not start with it
// (prepend_scheme "always"; "first": only the piece at the start of the input, i.e. not after
// an added token; "never"), and with `split` cuts before each replacement (MergedWithNext).
// The decoder turns replacements back into spaces, dropping those of the first token unless
// the scheme is "never".

import { TokenizerError } from "./errors.ts";
import type { Piece, PreTokenize } from "./piece.ts";

export type PrependScheme = "always" | "first" | "never";

export interface MetaspaceSpec {
  replacement: string;
  prependScheme: PrependScheme;
  split: boolean;
}

export function parseMetaspace(s: Record<string, unknown>, file: string, field: string): MetaspaceSpec {
  const replacement = typeof s.replacement === "string" ? s.replacement : "\u2581";
  if ([...replacement].length !== 1) {
    throw new TokenizerError(file, `${field}.replacement`, "must be a single character");
  }
  // Files written before tokenizers 0.19 have add_prefix_space instead of prepend_scheme.
  let scheme = s.prepend_scheme as PrependScheme | undefined;
  if (scheme === undefined) scheme = s.add_prefix_space === false ? "never" : "always";
  if (!["always", "first", "never"].includes(scheme)) {
    throw new TokenizerError(file, `${field}.prepend_scheme`, `unknown prepend scheme "${String(scheme)}"`);
  }
  return { replacement, prependScheme: scheme, split: s.split !== false };
}

/** "first" prepends only to a piece at offset 0 of the input (`atInputStart` and `start` 0). */
export function metaspacePreTokenizer(spec: MetaspaceSpec): PreTokenize {
  const rep = spec.replacement;
  return (pieces) => {
    const out: Piece[] = [];
    for (const p of pieces) {
      let text = p.src.split(" ").join(rep);
      let prefixAdded = false;
      const wantPrefix =
        spec.prependScheme === "always" ||
        (spec.prependScheme === "first" && p.start === 0 && p.atInputStart);
      if (wantPrefix && text.length > 0 && !text.startsWith(rep)) {
        text = rep + text;
        prefixAdded = true;
      }
      const shift = prefixAdded ? rep.length : 0;
      if (!spec.split) {
        out.push({ ...p, text, src: text, prefixAdded: p.prefixAdded || prefixAdded, byteMapped: false });
        continue;
      }
      // MergedWithNext on the replacement: each piece starts at a replacement (or the start).
      let s = 0;
      for (let i = 1; i <= text.length; i++) {
        if (i < text.length && !text.startsWith(rep, i)) continue;
        const sub = text.slice(s, i);
        out.push({
          text: sub,
          src: sub,
          start: p.start + Math.max(0, s - shift),
          byteMapped: false,
          prefixAdded: s === 0 && (p.prefixAdded || prefixAdded),
          atInputStart: p.atInputStart && s === 0,
        });
        s = i;
      }
    }
    return out;
  };
}

/** The Metaspace decoder step (per token). */
export function metaspaceDecoder(spec: MetaspaceSpec): (tokens: string[]) => string[] {
  const rep = spec.replacement;
  return (tokens) =>
    tokens.map((t, i) => {
      const sp = i === 0 && spec.prependScheme !== "never" ? "" : " ";
      return t.split(rep).join(sp);
    });
}
