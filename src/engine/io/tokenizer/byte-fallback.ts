// SentencePiece byte fallback: a character the vocabulary lacks becomes one `<0xNN>` token per
// UTF-8 byte (Llama 2, Mistral, Gemma), and the ByteFallback decoder turns runs of them back
// into text.

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** "<0xE2>" for byte 0xE2, as HF spells byte tokens. */
export function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/** The byte tokens of `text`, or undefined when one of them is not in the vocabulary (HF then uses unk). */
export function byteFallbackIds(
  text: string,
  vocab: Map<string, number>,
): { token: string; id: number }[] | undefined {
  const out: { token: string; id: number }[] = [];
  for (const b of utf8.encode(text)) {
    const token = byteTokenName(b);
    const id = vocab.get(token);
    if (id === undefined) return undefined;
    out.push({ token, id });
  }
  return out;
}

/** The byte a token like "<0x41>" stands for (HF: six bytes, `<0x`, two hex digits via from_str_radix, `>`). */
export function byteOfToken(token: string): number | undefined {
  if (token.length !== 6 || !token.startsWith("<0x") || token[5] !== ">") return undefined;
  const hex = token.slice(3, 5);
  // Rust's u8::from_str_radix takes an optional leading '+'.
  if (!/^(\+[0-9a-fA-F]|[0-9a-fA-F]{2})$/.test(hex)) return undefined;
  return Number.parseInt(hex.replace("+", ""), 16);
}

/**
 * HF `ByteFallback` decoder step: each run of byte tokens becomes its UTF-8 text, or, when the
 * run is not valid UTF-8, one U+FFFD per byte. Other tokens pass through.
 */
export function decodeByteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let run: number[] = [];
  const flush = () => {
    if (run.length === 0) return;
    try {
      out.push(utf8Strict.decode(new Uint8Array(run)));
    } catch {
      for (let i = 0; i < run.length; i++) out.push("\ufffd");
    }
    run = [];
  };
  for (const t of tokens) {
    const b = byteOfToken(t);
    if (b !== undefined) run.push(b);
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}
