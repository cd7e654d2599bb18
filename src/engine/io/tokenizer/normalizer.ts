// HF tokenizers normalizers that Llama-family tokenizers use (Qwen2: NFC; Llama 3: none).

import { TokenizerError } from "./errors.ts";

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
    case "Strip":
      return (t) => t.trim();
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
