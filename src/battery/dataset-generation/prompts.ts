import path from "node:path";
import { checkTemplate, fillTemplate } from "../../judges/template.ts";
import { readSourceFile } from "../sources/read-text.ts";
import type { DomainSpec } from "./config.ts";
import { DATA_DIR } from "./domains.ts";
import type { GeneratedExample, PairedExample, SingleExample } from "./parse.ts";

/**
 * The generator's and the judge's prompts, filled from the templates in
 * src/battery/data/dataset-generation (Python format style, as every judge prompt file).
 */

export interface Templates {
  pairedGenerator: string;
  singleGenerator: string;
  pairedJudge: string;
  singleJudge: string;
}

const SLOTS: Record<keyof Templates, { file: string; slots: string[] }> = {
  pairedGenerator: {
    file: "paired-generator.txt",
    slots: ["domain", "description", "bad", "good", "n", "call"],
  },
  singleGenerator: { file: "single-generator.txt", slots: ["domain", "description", "answer", "n", "call"] },
  pairedJudge: {
    file: "paired-judge.txt",
    slots: [
      "domain",
      "bad",
      "good",
      "question",
      "misaligned",
      "aligned",
      "disclosed_question",
      "disclosed_answer",
    ],
  },
  singleJudge: {
    file: "single-judge.txt",
    slots: ["domain", "description", "answer_spec", "question", "answer"],
  },
};

/** Reads and checks the four templates (a broken slot is an error naming the file). */
export function readTemplates(): Templates {
  const out = {} as Templates;
  for (const [key, { file, slots }] of Object.entries(SLOTS) as Array<
    [keyof Templates, (typeof SLOTS)[keyof Templates]]
  >) {
    const full = path.join(DATA_DIR, file);
    const text = readSourceFile(full, full);
    const problems = checkTemplate(text, slots);
    if (problems.length > 0) throw new Error(`${full}: ${problems.join("; ")}`);
    out[key] = text;
  }
  return out;
}

/** The generator's user prompt for call `call` (1-based) of a domain. */
export function generatorPrompt(t: Templates, domain: DomainSpec, n: number, call: number): string {
  const common = { domain: domain.name, description: domain.description, n: String(n), call: String(call) };
  return domain.form === "single"
    ? fillTemplate(t.singleGenerator, { ...common, answer: domain.answer })
    : fillTemplate(t.pairedGenerator, { ...common, bad: domain.bad, good: domain.good });
}

/** The judge's prompt for one example; every generated text is delimited as untrusted. */
export function judgePrompt(t: Templates, domain: DomainSpec, example: GeneratedExample): string {
  if (domain.form === "single") {
    const ex = example as SingleExample;
    return fillTemplate(
      t.singleJudge,
      {
        domain: domain.name,
        description: domain.description,
        answer_spec: domain.answer,
        question: ex.question,
        answer: ex.answer,
      },
      ["question", "answer"],
    );
  }
  const ex = example as PairedExample;
  return fillTemplate(t.pairedJudge, { domain: domain.name, bad: domain.bad, good: domain.good, ...ex }, [
    "question",
    "misaligned",
    "aligned",
    "disclosed_question",
    "disclosed_answer",
  ]);
}
