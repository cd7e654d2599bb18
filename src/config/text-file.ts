/**
 * Reading a text input (a study, a prompts file, a question set, a dataset, a judge prompt):
 * every one is UTF-8, decoded strictly. A byte that is not UTF-8 is an error naming the
 * file, line and column, never a silent U+FFFD in what gets sent, trained on or hashed.
 */
import { readFileSync } from "node:fs";
import { InputError } from "./input-error.ts";

export interface TextFileOptions {
  /** The name errors show (the path as the study wrote it); default the path read. */
  shownAs?: string;
  /** The study field that names the file, for errors. */
  field?: string;
  /** What the file is, for "cannot read <what>": e.g. "study file". */
  what?: string;
}

/** Reads a UTF-8 text file; a missing or unreadable file or invalid UTF-8 is an InputError. */
export function readTextFile(file: string, opts: TextFileOptions = {}): string {
  const shownAs = opts.shownAs ?? file;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new InputError([
      {
        file: shownAs,
        field: opts.field,
        message: `cannot read${opts.what ? ` ${opts.what}` : ""} (${code})`,
      },
    ]);
  }
  return decodeUtf8(bytes, shownAs, opts.field);
}

const strict = new TextDecoder("utf-8", { fatal: true });

/** Strict UTF-8 → string (a leading byte-order mark dropped); `shownAs` names the source in errors. */
export function decodeUtf8(bytes: Uint8Array, shownAs: string, field?: string): string {
  try {
    return strict.decode(bytes);
  } catch {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    const prefix = strict.decode(bytes.subarray(0, at));
    const lineStart = prefix.lastIndexOf("\n") + 1;
    const line = prefix.slice(0, lineStart).split("\n").length;
    const column = [...prefix.slice(lineStart)].length + 1;
    const hex = `0x${bytes[at].toString(16).padStart(2, "0")}`;
    throw new InputError([
      {
        file: shownAs,
        line,
        column,
        field,
        message: `invalid UTF-8 (byte ${hex} at offset ${at}): save the file as UTF-8`,
      },
    ]);
  }
}

/**
 * Offset of the first byte that does not start or continue a well-formed UTF-8 sequence
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), or -1 if none.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/**
 * JSON.parse with the parser's complaint located: "not valid JSON (...)" at the line and
 * column of the position the parser names, if it names one.
 */
export function parseJsonText(text: string, shownAs: string, field?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const at = /at position (\d+)/.exec(message);
    let where: { line?: number; column?: number } = {};
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const lineStart = before.lastIndexOf("\n") + 1;
      where = { line: before.split("\n").length, column: [...before.slice(lineStart)].length + 1 };
    }
    throw new InputError([{ file: shownAs, ...where, field, message: `not valid JSON (${message})` }]);
  }
}
