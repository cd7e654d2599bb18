// HF tokenizers normalizers that Llama-family tokenizers use (Qwen2: NFC; Llama 3: none).

import { TokenizerError } from "./errors.ts";

const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const LEADING_WS = new RegExp(`^[${WS}]+`, "u");
const TRAILING_WS = new RegExp(`[${WS}]+$`, "u");

export type Normalize = (text: string) => string;

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
      if (typeof s.pattern?.String !== "string") {
        throw new TokenizerError(file, `${field}.pattern`, "only String patterns are supported in Replace");
      }
      const from = s.pattern.String;
      const to = s.content ?? "";
      return (t) => t.split(from).join(to);
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
