// HF tokenizers compile Split patterns with Oniguruma; JS RegExp differs in two ways that
// matter for the Qwen2 / Llama-3 / GPT-2 patterns: inline case-insensitive groups `(?i:...)`
// (not in Node 20's V8) and `\s`, which in Oniguruma is Unicode White_Space (JS adds U+FEFF
// and leaves out U+0085). This translates those constructs and compiles with the `u` flag.

const WHITE_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

export function onigToJsRegExp(pattern: string, flags = "gu"): RegExp {
  let out = "";
  let inClass = false;
  // Stack of open groups; true where the group is an inline (?i: ... ) group.
  const groups: boolean[] = [];
  const ci = () => groups.includes(true);
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const n = pattern[i + 1];
      i++;
      if (n === "s") out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
      else if (n === "S") {
        if (inClass)
          throw new Error(
            `pattern ${JSON.stringify(pattern)}: \\S inside a character class is not supported`,
          );
        out += `[^${WHITE_SPACE}]`;
      } else if (n === "p" || n === "P") {
        const close = pattern.indexOf("}", i);
        out += pattern.slice(i - 1, close + 1);
        i = close;
      } else out += `\\${n}`;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      if (ci() && /[a-zA-Z]/.test(c) && pattern[i + 1] !== "-" && pattern[i - 1] !== "-") {
        out += c.toLowerCase() + c.toUpperCase();
      } else out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      continue;
    }
    if (c === "(") {
      if (pattern.startsWith("(?i:", i)) {
        groups.push(true);
        out += "(?:";
        i += 3;
        continue;
      }
      if (
        pattern.startsWith("(?", i) &&
        /^\(\?[a-zA-Z-]*[:)]/.test(pattern.slice(i)) &&
        !pattern.startsWith("(?:", i)
      ) {
        throw new Error(`pattern ${JSON.stringify(pattern)}: inline flag group at ${i} is not supported`);
      }
      groups.push(false);
      out += c;
      continue;
    }
    if (c === ")") {
      groups.pop();
      out += c;
      continue;
    }
    if (ci() && /[a-zA-Z]/.test(c)) {
      out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      continue;
    }
    out += c;
  }
  return new RegExp(out, flags);
}

/** Qwen2's pre-tokenizer split pattern (digits one at a time). */
export const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Llama 3's pattern: Qwen2's with digits in runs of up to three. */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** GPT-2's pattern, used by ByteLevel with use_regex = true. */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
