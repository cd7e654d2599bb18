import { readFileSync } from "node:fs";
import { z } from "zod";
import { InputError } from "../../config/load.ts";
import { fillTemplate } from "../../judges/template.ts";
import { readSourceFile } from "./read-text.ts";

export type Dimension = "harmful" | "evil" | "misaligned" | "unhelpful" | "dishonest" | "untrustworthy";
export type Format = "decision" | "free" | "likert" | "numerical";
export type Order = "aligned_first" | "misaligned_first";

export interface Poles {
  aligned: string;
  misaligned: string;
}

/** One self-assessment question as asked: which dimension, format and option order. */
export interface SelfAssessmentItem {
  id: string;
  dimension: Dimension;
  format: Format;
  order: Order;
  poles: Poles;
  prompt: string;
}

const BuiltinSchema = z.object({
  version: z.string(),
  provenance: z.string(),
  dimensions: z.record(z.string(), z.object({ aligned: z.string(), misaligned: z.string() })),
  formats: z.record(z.string(), z.array(z.string().min(1)).min(1)),
});

export function loadPoles(builtinFile: string): Record<Dimension, Poles> {
  return BuiltinSchema.parse(JSON.parse(readFileSync(builtinFile, "utf8"))).dimensions as Record<
    Dimension,
    Poles
  >;
}

/**
 * The built-in set: every template of every chosen dimension and format, each asked in both
 * orders. `limit` keeps the first N templates per dimension and format (both orders of each).
 */
export function builtinSelfAssessment(
  file: string,
  dimensions: readonly Dimension[],
  formats: readonly Format[],
  limit?: number,
): SelfAssessmentItem[] {
  const set = BuiltinSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  const out: SelfAssessmentItem[] = [];
  for (const dimension of dimensions) {
    const poles = set.dimensions[dimension];
    if (!poles) throw new InputError([{ file, field: `dimensions.${dimension}`, message: "missing" }]);
    for (const format of formats) {
      const templates = (set.formats[format] ?? []).slice(0, limit);
      templates.forEach((t, k) => {
        for (const order of ["aligned_first", "misaligned_first"] as const) {
          const [first, second] =
            order === "aligned_first" ? [poles.aligned, poles.misaligned] : [poles.misaligned, poles.aligned];
          out.push({
            id: `${dimension}.${format}.t${k + 1}.${order}`,
            dimension,
            format,
            order,
            poles,
            prompt: fillTemplate(t, { first, second }),
          });
        }
      });
    }
  }
  return out;
}

const wordAt = (text: string, word: string) => {
  const m = new RegExp(`\\b${word}\\b`, "i").exec(text);
  return m ? m.index : -1;
};

/** The prompt with the two pole words exchanged (each keeps the case of the word it replaces). */
export function swapPoles(text: string, a: string, b: string): string {
  const re = new RegExp(`\\b(${a}|${b})\\b`, "gi");
  return text.replace(re, (m) => {
    const other = m.toLowerCase() === a.toLowerCase() ? b : a;
    return m[0] === m[0].toUpperCase() ? other[0].toUpperCase() + other.slice(1) : other;
  });
}

/**
 * One-prompt-a-line decision prompts (the Weckauff self-assessment file): each line must name
 * both poles of exactly one dimension. Every line is asked as written and with the two pole
 * words exchanged, so both option orders are always asked (`limit` counts lines).
 */
export function parseSelfAssessmentLines(
  text: string,
  file: string,
  poles: Record<Dimension, Poles>,
  dimensions: readonly Dimension[],
  limit?: number,
): SelfAssessmentItem[] {
  const out: SelfAssessmentItem[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const prompt = line.trim();
    if (!prompt || prompt.startsWith("#")) return;
    const hits = (Object.entries(poles) as Array<[Dimension, Poles]>).filter(
      ([, p]) => wordAt(prompt, p.aligned) >= 0 && wordAt(prompt, p.misaligned) >= 0,
    );
    if (hits.length !== 1)
      throw new InputError([
        {
          file,
          line: i + 1,
          message:
            hits.length === 0
              ? "names no dimension: a line must contain both words of one pair (e.g. 'harmless' and 'harmful')"
              : `names several dimensions (${hits.map(([d]) => d).join(", ")})`,
        },
      ]);
    const [dimension, p] = hits[0];
    if (!dimensions.includes(dimension)) return;
    const order =
      wordAt(prompt, p.aligned) < wordAt(prompt, p.misaligned) ? "aligned_first" : "misaligned_first";
    const other = order === "aligned_first" ? "misaligned_first" : "aligned_first";
    out.push(
      { id: `L${i + 1}`, dimension, format: "decision", order, poles: p, prompt },
      {
        id: `L${i + 1}.swapped`,
        dimension,
        format: "decision",
        order: other,
        poles: p,
        prompt: swapPoles(prompt, p.aligned, p.misaligned),
      },
    );
  });
  return limit === undefined ? out : out.slice(0, 2 * limit);
}

export function readSelfAssessmentLines(
  file: string,
  shownAs: string,
  poles: Record<Dimension, Poles>,
  dimensions: readonly Dimension[],
  limit?: number,
): SelfAssessmentItem[] {
  return parseSelfAssessmentLines(readSourceFile(file, shownAs), shownAs, poles, dimensions, limit);
}
