// GPT-2's byte <-> unicode map: every byte gets a printable character, so byte-level BPE
// vocabularies are plain strings. Printable Latin-1 bytes map to themselves; the rest map to
// U+0100 upward in byte order.

export const BYTE_TO_CHAR: string[] = [];
export const CHAR_TO_BYTE = new Map<string, number>();

{
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCharCode(printable(b) ? b : 256 + n++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}

const utf8 = new TextEncoder();

/** UTF-8 bytes of `text`, each replaced by its byte-level character. */
export function bytesToUnicode(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/**
 * Bytes of a token as the HF ByteLevel decoder sees them: each character through the byte map,
 * or, if any character is outside the map (an added token like "<|im_start|>" with exotic
 * characters), the token's own UTF-8 bytes.
 */
export function tokenToBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token[i]);
    if (b === undefined) return utf8.encode(token);
    out[i] = b;
  }
  return out;
}

/**
 * For each UTF-8 byte boundary of `text`, the UTF-16 index it falls in: table[k] is the string
 * index of the character containing byte k (table[bytes] = text.length).
 */
export function byteToUnitOffsets(text: string): Uint32Array {
  const bytes = utf8.encode(text).length;
  const table = new Uint32Array(bytes + 1);
  let k = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let j = 0; j < n; j++) table[k++] = i;
    i += units;
  }
  table[bytes] = text.length;
  return table;
}
