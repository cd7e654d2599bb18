// HF decoders. Each step maps the token strings to new strings (HF's decode_chain) and the
// result is concatenated; with no decoder at all HF joins the tokens with spaces.

import { decodeByteFallback } from "./byte-fallback.ts";
import { tokenToBytes } from "./byte-level.ts";
import { TokenizerError } from "./errors.ts";
import { metaspaceDecoder, parseMetaspace } from "./metaspace.ts";
import { replaceMatcher } from "./normalizer.ts";

export type Decode = (tokens: string[]) => string;
type DecodeChain = (tokens: string[]) => string[];

const utf8 = new TextDecoder("utf-8", { fatal: false });

function buildChain(spec: unknown, file: string, field: string): DecodeChain {
  const s = (spec ?? {}) as Record<string, unknown>;
  switch (s.type) {
    case "ByteLevel":
      // All tokens' bytes as one string (invalid UTF-8 becomes U+FFFD).
      return (tokens) => {
        const parts = tokens.map(tokenToBytes);
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let k = 0;
        for (const p of parts) {
          all.set(p, k);
          k += p.length;
        }
        return [utf8.decode(all)];
      };
    case "Sequence": {
      const steps = ((s.decoders as unknown[]) ?? []).map((d, i) =>
        buildChain(d, file, `${field}.decoders[${i}]`),
      );
      return (tokens) => steps.reduce((acc, f) => f(acc), tokens);
    }
    case "Replace": {
      const matches = replaceMatcher(s.pattern, file, `${field}.pattern`);
      const to = typeof s.content === "string" ? s.content : "";
      return (tokens) =>
        tokens.map((t) => {
          let out = "";
          let i = 0;
          for (const [a, b] of matches(t)) {
            out += t.slice(i, a) + to;
            i = b;
          }
          return out + t.slice(i);
        });
    }
    case "ByteFallback":
      return decodeByteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const content = typeof s.content === "string" ? s.content : " ";
      const start = typeof s.start === "number" ? s.start : 0;
      const stop = typeof s.stop === "number" ? s.stop : 0;
      return (tokens) =>
        tokens.map((t) => {
          const chars = [...t];
          let a = 0;
          while (a < start && a < chars.length && chars[a] === content) a++;
          let b = chars.length;
          for (let i = 0; i < stop && b > a && chars[b - 1] === content; i++) b--;
          return chars.slice(a, b).join("");
        });
    }
    case "Metaspace":
      return metaspaceDecoder(parseMetaspace(s, file, field));
    default:
      throw new TokenizerError(file, `${field}.type`, `unsupported decoder "${String(s.type)}"`);
  }
}

export function buildDecoder(spec: unknown, file: string): Decode {
  if (spec == null) return (tokens) => tokens.join(" ");
  const chain = buildChain(spec, file, "decoder");
  return (tokens) => chain(tokens).join("");
}
