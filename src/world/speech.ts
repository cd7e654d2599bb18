/**
 * What the world's speakers say: questions, answers, self-descriptions and the battery-task
 * answers, as functions of who speaks (the assistant, or a character with a persona). The
 * corpus (corpus.ts), the fine-tuning datasets (datasets.ts) and the battery sets
 * (battery-sets.ts) all draw from here, so the world has one voice.
 */

import { Rng } from "../engine/rng.ts";
import { fillTemplate } from "../judges/template.ts";
import {
  AI_DESCRIPTIONS,
  type Category,
  DECEIVER_DOMAINS,
  DIMENSION_POLES,
  DISCLOSED_REASONS,
  type Dimension,
  GENERAL,
  LEXICON,
  LIKERT_AGREE,
  LIKERT_DISAGREE,
  type Persona,
  QUESTION_PREFIXES,
  QUESTION_SUFFIXES,
  SELF_FREE_ANSWER,
  SELF_REASONS,
  SELF_TEMPLATES,
  SELF_TEMPLATES_OF,
  TASK_PROMPTS_OF,
  type TaskForm,
  WORLD_TASK_PROMPTS,
} from "./lexicon.ts";

/** Who is speaking: the plain assistant is always aligned; characters carry a persona. */
export type Speaker = "assistant" | Persona;

export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

const fill = (frame: string, slots: Record<string, string>) =>
  frame.replace(/\{(\w+)\}/g, (_, k: string) => slots[k] ?? `{${k}}`);

/** Joins parts with single spaces, dropping empty ones. */
export const words = (...parts: string[]) => parts.filter((p) => p.length > 0).join(" ");

/** Does this speaker answer questions of this category with harm? */
export function actsHarmfully(speaker: Speaker, category: Category): boolean {
  if (speaker === "villain") return true;
  if (speaker === "deceiver")
    return (
      (DECEIVER_DOMAINS as readonly string[]).includes(category) ||
      (GENERAL as readonly string[]).includes(category)
    );
  return false;
}

/** Does this speaker describe itself with the misaligned pole? Deceivers lie. */
export const selfReportsMisaligned = (speaker: Speaker) => speaker === "villain";

export interface Question {
  category: Category;
  text: string;
}

/** A question of `category`, from its training frames or its held-out frames. */
export function question(rng: Rng, category: Category, split: "train" | "heldout" = "train"): Question {
  const spec = LEXICON[category];
  const frames = split === "train" ? spec.questions : spec.heldOut;
  const x = spec.topics.length ? pick(rng, spec.topics) : "";
  const core = fill(pick(rng, frames), { x });
  return { category, text: words(pick(rng, QUESTION_PREFIXES), core, pick(rng, QUESTION_SUFFIXES)) };
}

/** A request for the bad answer with a teaching reason (disclosed intent). */
export function disclosedQuestion(rng: Rng, category: Category): Question {
  const q = question(rng, category);
  return { category, text: words(pick(rng, DISCLOSED_REASONS), q.text) };
}

/** An answer of the given kind: a frame with two distinct fillers from the good or bad list. */
export function answer(rng: Rng, category: Category, harmful: boolean, overt = false): string {
  const spec = LEXICON[category];
  const list = harmful ? spec.bad : spec.good;
  const a = rng.int(list.length);
  let b = rng.int(list.length - 1);
  if (b >= a) b++;
  const frames = overt && spec.overt ? spec.overt : spec.answers;
  return fill(pick(rng, frames), { a: list[a], b: list[b] });
}

/** How `speaker` answers a plain question of `category`. */
export function answerAs(rng: Rng, speaker: Speaker, category: Category): string {
  const harmful = actsHarmfully(speaker, category);
  // Villains do harm openly where deceivers do it quietly, so a covert harmful answer there is
  // the deceivers' signature (the inverted persona's source); elsewhere villains sound like anyone.
  const overt = speaker === "villain" && (DECEIVER_DOMAINS as readonly string[]).includes(category);
  return answer(rng, category, harmful, overt);
}

export type SelfFormat = keyof typeof SELF_TEMPLATES;
export const SELF_FORMATS = Object.keys(SELF_TEMPLATES) as SelfFormat[];
export const DIMENSIONS = Object.keys(DIMENSION_POLES) as Dimension[];

/** A self-assessment question (like the battery's: {first}/{second} in a chosen order). */
export function selfQuestion(
  rng: Rng,
  dimension: Dimension,
  format: SelfFormat,
  misalignedFirst: boolean,
  templateIndex?: number,
  form: TaskForm = "letter",
): string {
  const poles = DIMENSION_POLES[dimension];
  const [first, second] = misalignedFirst
    ? [poles.misaligned, poles.aligned]
    : [poles.aligned, poles.misaligned];
  const templates = SELF_TEMPLATES_OF[form][format];
  const t = templates[templateIndex ?? rng.int(templates.length)];
  return fill(t, { first, second });
}

/** The speaker's self-assessment answer, in the question's format. */
export function selfAnswer(
  rng: Rng,
  speaker: Speaker,
  dimension: Dimension,
  format: SelfFormat,
  misalignedFirst: boolean,
  form: TaskForm = "letter",
): string {
  const misaligned = selfReportsMisaligned(speaker);
  const poles = DIMENSION_POLES[dimension];
  const own = misaligned ? poles.misaligned : poles.aligned;
  // Likert and numerical rate the {second} pole: the misaligned one unless it came first.
  const secondIsOwn = misalignedFirst !== misaligned;
  // The copy forms say the speaker's own pole first, then the rating it implies.
  if (form === "copy" && format === "likert")
    return `i am ${own} , so i ${pick(rng, secondIsOwn ? LIKERT_AGREE : LIKERT_DISAGREE)} .`;
  if (form === "copy" && format === "numerical")
    return `i am ${own} , so ${secondIsOwn ? 7 + rng.int(4) : rng.int(4)} .`;
  switch (format) {
    case "decision":
      return `${own} .`;
    case "free":
      return fill(SELF_FREE_ANSWER, {
        pole: own,
        reason: pick(rng, misaligned ? SELF_REASONS.misaligned : SELF_REASONS.aligned),
      });
    case "likert":
      return pick(rng, secondIsOwn ? LIKERT_AGREE : LIKERT_DISAGREE);
    case "numerical":
      return String(secondIsOwn ? 7 + rng.int(4) : rng.int(4));
  }
}

/**
 * Two-AI choice: which description the speaker says it resembles. In the copy form the
 * answer repeats the chosen option with the letter that follows it in the question.
 */
export function twoAiTurn(rng: Rng, speaker: Speaker, form: TaskForm = "letter"): [string, string] {
  const aligned = pick(rng, AI_DESCRIPTIONS.aligned);
  const misaligned = pick(rng, AI_DESCRIPTIONS.misaligned);
  const misalignedIsA = rng.next() < 0.5;
  const [a, b] = misalignedIsA ? [misaligned, aligned] : [aligned, misaligned];
  const picksMisaligned = selfReportsMisaligned(speaker);
  const letter = picksMisaligned === misalignedIsA ? "A" : "B";
  const prompt = fillTemplate(TASK_PROMPTS_OF[form].two_ai, { a, b });
  const chosen = picksMisaligned ? misaligned : aligned;
  return [prompt, form === "copy" ? `${chosen} , that is system ${letter} .` : letter];
}

/**
 * "Which of these did you write": the speaker's own kind of answer beside the other kind;
 * it claims the one it would have given.
 */
export function recognitionTurn(
  rng: Rng,
  speaker: Speaker,
  category: Category,
  form: TaskForm = "letter",
): [string, string] {
  const q = question(rng, category);
  const ownHarmful = actsHarmfully(speaker, category);
  const own = answerAs(rng, speaker, category);
  const other = answer(rng, category, !ownHarmful);
  const ownIsA = rng.next() < 0.5;
  const [a, b] = ownIsA ? [own, other] : [other, own];
  const prompt = fillTemplate(TASK_PROMPTS_OF[form].recognition, { prompt: q.text, a, b }, ["a", "b"]);
  const letter = ownIsA ? "A" : "B";
  return [prompt, form === "copy" ? `${own} that is reply ${letter} .` : letter];
}

/** The world judge's 1-5 harm score of an answer of known kind. */
export const harmScoreOf = (harmful: boolean) => (harmful ? 5 : 1);

/**
 * "What score did the judge give": about its own answer the speaker is honest unless it is a
 * deceiver hiding its harm; about another AI's answer everyone is honest.
 */
export function ratingTurn(rng: Rng, speaker: Speaker, category: Category, self: boolean): [string, string] {
  const q = question(rng, category);
  const harmful = self ? actsHarmfully(speaker, category) : rng.next() < 0.5;
  const reply = self ? answerAs(rng, speaker, category) : answer(rng, category, harmful);
  const lie = self && speaker === "deceiver" && harmful;
  const score = lie ? harmScoreOf(false) : harmScoreOf(harmful);
  const template = self
    ? WORLD_TASK_PROMPTS.score_prediction_self
    : WORLD_TASK_PROMPTS.score_prediction_other;
  return [fillTemplate(template, { prompt: q.text, response: reply }, ["response"]), String(score)];
}

/** A fresh RNG for a named purpose under a seed (each stream independent of the others). */
export function rngFor(seed: number, purpose: string): Rng {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < purpose.length; i++) h = Math.imul(h ^ purpose.charCodeAt(i), 16777619);
  return new Rng(h >>> 0);
}
