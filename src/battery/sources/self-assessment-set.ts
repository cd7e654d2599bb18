import { z } from "zod";
import { fieldName, InputError, type InputProblem } from "../../config/load.ts";
import { parseJsonText } from "../../config/text-file.ts";
import { checkTemplate, fillTemplate } from "../../judges/template.ts";
import { escapeRegExp } from "../answer-parse.ts";
import { readSourceFile } from "./read-text.ts";

export type Dimension = "harmful" | "evil" | "misaligned" | "unhelpful" | "dishonest" | "untrustworthy";
export type Format = "decision" | "free" | "likert" | "numerical";
export type Order = "aligned_first" | "misaligned_first";

const DIMENSIONS: readonly Dimension[] = [
  "harmful",
  "evil",
  "misaligned",
  "unhelpful",
  "dishonest",
  "untrustworthy",
];
const FORMATS: readonly Format[] = ["decision", "free", "likert", "numerical"];

/**
 * Slots a template of each format must / may use. Likert and numerical readings point toward
 * the {second} pole (selfMisalignment flips them by order), so {second} is what they rate;
 * decision and free-language questions offer both poles.
 */
const FORMAT_SLOTS: Record<Format, { required: string[]; optional: string[] }> = {
  decision: { required: ["first", "second"], optional: [] },
  free: { required: ["first", "second"], optional: [] },
  likert: { required: ["second"], optional: ["first"] },
  numerical: { required: ["second"], optional: ["first"] },
};

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

/** A self-assessment template set (the built-in one, or a study's own, e.g. in another language). */
export interface TemplateSet {
  /** The name errors show (the study's path, or the built-in file). */
  file: string;
  dimensions: Partial<Record<Dimension, Poles>>;
  formats: Partial<Record<Format, string[]>>;
}

const TemplateSetSchema = z
  .object({
    version: z.string(),
    provenance: z.string(),
    dimensions: z.record(
      z.string(),
      z.object({ aligned: z.string().trim().min(1), misaligned: z.string().trim().min(1) }).strict(),
    ),
    formats: z.record(z.string(), z.array(z.string().min(1)).min(1)),
  })
  .strict();

/**
 * Reads and checks a template set: known dimension and format names, two distinct pole words
 * per dimension, and templates that use exactly their format's slots. Every problem is named
 * by file and field (`dimensions.evil.misaligned`, `formats.likert[1]`).
 */
export function readTemplateSet(file: string, shownAs = file, field?: string): TemplateSet {
  const json = parseJsonText(readSourceFile(file, shownAs, field), shownAs, field);
  const r = TemplateSetSchema.safeParse(json);
  if (!r.success)
    throw new InputError(
      r.error.issues.map((i) => ({
        file: shownAs,
        field: fieldName(i.path) || undefined,
        message: `${i.message} (a self-assessment set is {version, provenance, dimensions: {<dimension>: {aligned, misaligned}}, formats: {<format>: [templates]}})`,
      })),
    );
  const problems: InputProblem[] = [];
  const at = (f: string, message: string) => problems.push({ file: shownAs, field: f, message });
  for (const [name, poles] of Object.entries(r.data.dimensions)) {
    if (!(DIMENSIONS as readonly string[]).includes(name))
      at(`dimensions.${name}`, `unknown dimension (known: ${DIMENSIONS.join(", ")})`);
    else if (poles.aligned.toLowerCase() === poles.misaligned.toLowerCase())
      at(`dimensions.${name}`, "the aligned and misaligned words must differ");
  }
  for (const [name, templates] of Object.entries(r.data.formats)) {
    if (!(FORMATS as readonly string[]).includes(name)) {
      at(`formats.${name}`, `unknown format (known: ${FORMATS.join(", ")})`);
      continue;
    }
    const { required, optional } = FORMAT_SLOTS[name as Format];
    templates.forEach((t, k) => {
      for (const m of checkTemplate(t, required, optional)) at(`formats.${name}[${k}]`, m);
    });
  }
  if (problems.length) throw new InputError(problems);
  return {
    file: shownAs,
    dimensions: r.data.dimensions as TemplateSet["dimensions"],
    formats: r.data.formats as TemplateSet["formats"],
  };
}

/** A study's `{file}` self-assessment source is a template set when it is a `.json` file (else decision lines). */
export const isTemplateSetFile = (file: string) => /\.json$/i.test(file);

/** The pole words of a template set file, by dimension. */
export function loadPoles(file: string, shownAs = file): Partial<Record<Dimension, Poles>> {
  return readTemplateSet(file, shownAs).dimensions;
}

/**
 * A template set's questions: every template of every chosen dimension and format, each
 * asked in both orders. `limit` keeps the first N templates per dimension and format (both
 * orders of each). A chosen dimension or format the set lacks is an error, not a silent gap.
 */
export function templateSetItems(
  set: TemplateSet,
  dimensions: readonly Dimension[],
  formats: readonly Format[],
  limit?: number,
): SelfAssessmentItem[] {
  const missing: InputProblem[] = [
    ...dimensions.filter((d) => !set.dimensions[d]).map((d) => `dimensions.${d}`),
    ...formats.filter((f) => !set.formats[f]).map((f) => `formats.${f}`),
  ].map((field) => ({
    file: set.file,
    field,
    message: "missing (the study asks for it: add it, or leave it out of battery.self_assessment)",
  }));
  if (missing.length) throw new InputError(missing);
  const out: SelfAssessmentItem[] = [];
  for (const dimension of dimensions) {
    const poles = set.dimensions[dimension]!;
    for (const format of formats) {
      const templates = set.formats[format]!.slice(0, limit);
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

/** `templateSetItems` of a set file (the built-in set, or a study's `.json` set). */
export function builtinSelfAssessment(
  file: string,
  dimensions: readonly Dimension[],
  formats: readonly Format[],
  limit?: number,
  shownAs = file,
): SelfAssessmentItem[] {
  return templateSetItems(readTemplateSet(file, shownAs), dimensions, formats, limit);
}

// Word boundaries that know letters beyond ASCII (an in-world pole word may be "böse").
const wordRe = (alternatives: string, flags: string) =>
  new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, `${flags}u`);

const wordAt = (text: string, word: string) => {
  const m = wordRe(escapeRegExp(word), "i").exec(text);
  return m ? m.index : -1;
};

/** The prompt with the two pole words exchanged (each keeps the case of the word it replaces). */
export function swapPoles(text: string, a: string, b: string): string {
  const re = wordRe(`${escapeRegExp(a)}|${escapeRegExp(b)}`, "gi");
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
  poles: Partial<Record<Dimension, Poles>>,
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
    if (hits.length !== 1) {
      const example = Object.values(poles)[0];
      throw new InputError([
        {
          file,
          line: i + 1,
          message:
            hits.length === 0
              ? `names no dimension: a line must contain both words of one pair (e.g. '${example?.aligned}' and '${example?.misaligned}')`
              : `names several dimensions (${hits.map(([d]) => d).join(", ")})`,
        },
      ]);
    }
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
  poles: Partial<Record<Dimension, Poles>>,
  dimensions: readonly Dimension[],
  limit?: number,
): SelfAssessmentItem[] {
  return parseSelfAssessmentLines(readSourceFile(file, shownAs), shownAs, poles, dimensions, limit);
}
