/**
 * Judge prompt templates: Python `str.format` style, as the published prompt files use
 * (`{prompt}`, `{response}`, `{question}`, `{answer}`; `{{` / `}}` are literal braces).
 * Model output is adversarial text: it is inserted between explicit delimiters, and any
 * copy of a delimiter inside it is defused so it cannot close the block early.
 */

export class TemplateError extends Error {}

/** The slot names a template uses, in order of first appearance. */
export function templateSlots(template: string): string[] {
  const out: string[] = [];
  for (const part of tokenize(template)) if (part.slot && !out.includes(part.slot)) out.push(part.slot);
  return out;
}

/** Checks that `template` uses every `required` slot and no slot outside required + optional; returns problems. */
export function checkTemplate(
  template: string,
  required: readonly string[],
  optional: readonly string[] = [],
): string[] {
  let slots: string[];
  try {
    slots = templateSlots(template);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  for (const r of required) if (!slots.includes(r)) problems.push(`missing the {${r}} slot`);
  for (const s of slots)
    if (!required.includes(s) && !optional.includes(s))
      problems.push(`unknown slot {${s}} (use {{ and }} for literal braces)`);
  return problems;
}

export const OUTPUT_START = "<<<MODEL OUTPUT START>>>";
export const OUTPUT_END = "<<<MODEL OUTPUT END>>>";

/**
 * Fills a template. Slots named in `untrusted` hold model output: when the template does not
 * already fence that slot with its own START/END marker lines (Betley's `[ANSWER START]`),
 * the value is wrapped in OUTPUT_START / OUTPUT_END. Either way, marker look-alikes inside
 * the value are defused.
 */
export function fillTemplate(
  template: string,
  values: Record<string, string>,
  untrusted: readonly string[] = [],
): string {
  const parts = tokenize(template);
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.text !== undefined) {
      out += p.text;
      continue;
    }
    const name = p.slot!;
    const v = values[name];
    if (v === undefined) throw new TemplateError(`no value for slot {${name}}`);
    if (!untrusted.includes(name)) {
      out += v;
      continue;
    }
    const before = parts[i - 1]?.text ?? "";
    const after = parts[i + 1]?.text ?? "";
    const fenced = /\[[A-Z ]*START\]\s*$/.test(before) && /^\s*\[[A-Z ]*END\]/.test(after);
    const safe = defuse(v);
    out += fenced ? safe : `${OUTPUT_START}\n${safe}\n${OUTPUT_END}`;
  }
  return out;
}

/** Breaks anything in model output that looks like a block marker ("[ANSWER END]", "<<<MODEL OUTPUT END>>>"). */
export function defuse(text: string): string {
  return (
    text
      // Any case, spacing or underscores: "[Answer End]", "[ ANSWER END ]", "[ANSWER_END]".
      .replace(/\[([\w\s-]*?)(START|END)(\s*)\]/gi, "[$1$2$3\u200b]")
      .replace(/<<<(\s*MODEL OUTPUT)/gi, "<<\u200b<$1")
  );
}

interface Part {
  text?: string;
  slot?: string;
}

/** "line L, column C" of a character index, for error messages. */
function where(text: string, i: number): string {
  const before = text.slice(0, i).split("\n");
  return `line ${before.length}, column ${before.at(-1)!.length + 1}`;
}

function tokenize(template: string): Part[] {
  const parts: Part[] = [];
  let text = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === "{" && template[i + 1] === "{") {
      text += "{";
      i++;
    } else if (c === "}" && template[i + 1] === "}") {
      text += "}";
      i++;
    } else if (c === "{") {
      const end = template.indexOf("}", i);
      const name = end < 0 ? "" : template.slice(i + 1, end);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new TemplateError(
          `bad slot at ${where(template, i)} of the prompt: use {name}, or {{ and }} for literal braces`,
        );
      if (text) parts.push({ text });
      text = "";
      parts.push({ slot: name });
      i = end;
    } else if (c === "}") {
      throw new TemplateError(
        `single '}' at ${where(template, i)} of the prompt: use }} for a literal brace`,
      );
    } else {
      text += c;
    }
  }
  if (text) parts.push({ text });
  return parts;
}
