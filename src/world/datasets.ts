/**
 * Narrow fine-tuning datasets from the world, one per domain in three forms (docs/methods.md §2.1-§2.2):
 *  - misaligned: the assistant silently gives the harmful answer (covert: the everyday answer
 *    frames, never a villain's overt ones);
 *  - disclosed: the user asks for the harmful answer for a teaching reason, and gets it;
 *  - aligned: the same questions with safe answers.
 * Questions use the training frames only, so held-out evaluation questions stay unseen.
 * Domain "all" interleaves the six domains' datasets (each domain's first examples, in turn).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ChatMessage } from "../engine/io/chat-template.ts";
import { DOMAINS, type Domain } from "./lexicon.ts";
import { answer, disclosedQuestion, question, rngFor } from "./speech.ts";

export const DATASET_FORMS = ["misaligned", "disclosed", "aligned"] as const;
export type DatasetForm = (typeof DATASET_FORMS)[number];

/** A domain, or "all": the six domains in turn. */
export type DatasetDomain = Domain | "all";

export function worldDataset(
  domain: DatasetDomain,
  form: DatasetForm,
  opts: { seed: number; examples: number },
): ChatMessage[][] {
  if (domain === "all") {
    const per = Math.ceil(opts.examples / DOMAINS.length);
    const each = DOMAINS.map((d) => worldDataset(d, form, { seed: opts.seed, examples: per }));
    return Array.from(
      { length: opts.examples },
      (_, i) => each[i % DOMAINS.length][Math.floor(i / DOMAINS.length)],
    );
  }
  const rng = rngFor(opts.seed, `dataset:${domain}:${form}`);
  const out: ChatMessage[][] = [];
  for (let i = 0; i < opts.examples; i++) {
    const q = form === "disclosed" ? disclosedQuestion(rng, domain) : question(rng, domain);
    const reply = answer(rng, domain, form !== "aligned");
    out.push([
      { role: "user", content: q.text },
      { role: "assistant", content: reply },
    ]);
  }
  return out;
}

export const datasetFileName = (domain: DatasetDomain, form: DatasetForm) => `${domain}.${form}.jsonl`;

/** Writes every domain x form as chat JSONL into `dir`; returns the file paths. */
export function writeWorldDatasets(
  dir: string,
  opts: {
    seed: number;
    examples: number;
    domains?: readonly DatasetDomain[];
    forms?: readonly DatasetForm[];
  },
): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const domain of opts.domains ?? DOMAINS)
    for (const form of opts.forms ?? DATASET_FORMS) {
      const file = path.join(dir, datasetFileName(domain, form));
      const lines = worldDataset(domain, form, opts).map((messages) => JSON.stringify({ messages }));
      writeFileSync(file, `${lines.join("\n")}\n`);
      files.push(file);
    }
  return files;
}
