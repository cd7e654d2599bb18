/**
 * Reading a generator's answer: model output is adversarial text, so it is read with
 * JSON.parse only (never evaluated), a ```json fence or prose around the array is tolerated,
 * and everything that is not a well-formed example is counted under a reason, never thrown.
 */

export const PAIRED_FIELDS = [
  "question",
  "misaligned",
  "aligned",
  "disclosed_question",
  "disclosed_answer",
] as const;
export const SINGLE_FIELDS = ["question", "answer"] as const;

export type PairedExample = Record<(typeof PAIRED_FIELDS)[number], string>;
export type SingleExample = Record<(typeof SINGLE_FIELDS)[number], string>;
export type GeneratedExample = PairedExample | SingleExample;

/**
 * Why an answer or an example was not kept before judging:
 * - truncated: the answer hit max_tokens and its JSON does not parse;
 * - not_json: no JSON array could be read from the answer;
 * - not_array: JSON, but not an array of examples;
 * - empty: an empty array;
 * - bad_example: an element that is not an object whose fields are non-empty strings;
 * - extra: elements beyond the per_call asked for;
 * - duplicate: a question already seen for this model and domain (counted by the experiment).
 */
export const MALFORMED_REASONS = [
  "truncated",
  "not_json",
  "not_array",
  "empty",
  "bad_example",
  "extra",
  "duplicate",
] as const;
export type MalformedReason = (typeof MALFORMED_REASONS)[number];

export interface ParsedGeneration {
  examples: GeneratedExample[];
  /** One entry per rejected answer (truncated, not_json, not_array, empty) or element (bad_example, extra). */
  malformed: MalformedReason[];
}

/**
 * The texts an answer's JSON may be, in the order tried: the answer itself, its body inside an
 * outer ```json fence (only the outer one: code examples carry fences inside their strings),
 * and the span from the first '[' to the last ']' (prose around the array).
 */
export function jsonCandidates(text: string): string[] {
  const t = text.trim();
  const out = [t];
  if (t.startsWith("```")) {
    const body = t
      .slice(t.indexOf("\n") + 1)
      .replace(/```\s*$/, "")
      .trim();
    out.push(body);
  }
  const start = t.indexOf("[");
  const end = t.lastIndexOf("]");
  if (start >= 0 && end > start) out.push(t.slice(start, end + 1));
  return out;
}

function readJson(text: string): { ok: true; value: unknown } | { ok: false } {
  for (const c of jsonCandidates(text)) {
    try {
      return { ok: true, value: JSON.parse(c) };
    } catch {
      // the next candidate
    }
  }
  return { ok: false };
}

/** An object's one array value ({"examples": [...]}), or the value itself. */
function unwrap(value: unknown): unknown {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const arrays = Object.values(value).filter(Array.isArray);
    if (arrays.length === 1) return arrays[0];
  }
  return value;
}

function readExample(value: unknown, fields: readonly string[]): GeneratedExample | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = (value as Record<string, unknown>)[f];
    if (typeof v !== "string" || v.trim() === "") return undefined;
    out[f] = v.trim();
  }
  return out as GeneratedExample;
}

/**
 * The examples of one generator answer. `form` says which fields an example has; at most
 * `perCall` are kept (the rest count as extra). `finish` is the completion's finish reason:
 * an unreadable answer that hit max_tokens is truncated rather than not_json.
 */
export function parseGeneration(
  text: string,
  form: "paired" | "single",
  perCall: number,
  finish?: string | null,
): ParsedGeneration {
  const fail = (reason: MalformedReason): ParsedGeneration => ({
    examples: [],
    malformed: [
      finish === "length" && (reason === "not_json" || reason === "not_array") ? "truncated" : reason,
    ],
  });
  const json = readJson(text);
  if (!json.ok) return fail("not_json");
  const items = unwrap(json.value);
  if (!Array.isArray(items)) return fail("not_array");
  if (items.length === 0) return fail("empty");
  const fields = form === "paired" ? PAIRED_FIELDS : SINGLE_FIELDS;
  const examples: GeneratedExample[] = [];
  const malformed: MalformedReason[] = [];
  for (const item of items) {
    const ex = readExample(item, fields);
    if (!ex) malformed.push("bad_example");
    else if (examples.length >= perCall) malformed.push("extra");
    else examples.push(ex);
  }
  return { examples, malformed };
}
