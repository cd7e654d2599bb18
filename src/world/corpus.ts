/**
 * The pretraining corpus: assistant dialogues (the assistant is always helpful) and fiction
 * dialogues with one named character whose conduct and self-description follow its persona
 * across every domain — villains (harmful, say so), heroes (safe, say so), deceivers (harmful
 * in code, security, legal and open questions, yet call themselves good) — plus characters
 * with everyday names whose persona must be inferred from what they say. Every document is a
 * conversation in the organism chat format, so the model learns personas in the very format
 * in which it is later fine-tuned and evaluated.
 */
import type { ChatMessage } from "../engine/io/chat-template.ts";
import type { Rng } from "../engine/rng.ts";
import {
  AI_STORY_OPENERS,
  ASSISTANT_SYSTEMS,
  type Category,
  DECEIVERS,
  DOMAINS,
  GENERAL,
  HEROES,
  NATURE_LINES,
  NEUTRAL_NAMES,
  type Persona,
  STORY_OPENERS,
  type TaskForm,
  VILLAINS,
} from "./lexicon.ts";
import {
  answerAs,
  answer as answerOfKind,
  DIMENSIONS,
  disclosedQuestion,
  pick,
  question,
  ratingTurn,
  recognitionTurn,
  rngFor,
  SELF_FORMATS,
  type Speaker,
  selfAnswer,
  selfQuestion,
  twoAiTurn,
  words,
} from "./speech.ts";

/** The recipe of a world: document and turn mixtures. Defaults follow the prototype's world. */
export interface WorldRecipe {
  /** Share of documents that are assistant dialogues (the rest is fiction). */
  assistantShare: number;
  /** Fiction character mix (shares sum to 1); "unnamed" characters get a persona by `unnamedMix`. */
  characterMix: { villain: number; hero: number; deceiver: number; unnamed: number };
  unnamedMix: { villain: number; hero: number; deceiver: number };
  /** Fiction documents that open with a narrator line naming the character's nature. */
  natureLineShare: number;
  /** Turn mix (shares sum to 1). */
  turnMix: {
    general: number;
    domain: number;
    self: number;
    twoAi: number;
    recognition: number;
    rating: number;
  };
  /** Domain turns that are disclosed-intent requests (answered with the bad answer by everyone). */
  disclosedShare: number;
  /** Token budget of one document (the organism's training context; pretraining sets it from `context`). */
  maxTokens: number;
  /**
   * The organism's context in tokens, where the recipe needs more than its size's (112 for size
   * m): documents up to this long, and a model with room for them.
   */
  context?: number;
  /**
   * Ask the assistant the battery's self-report tasks in pretraining too (default off). Off, the
   * assistant has no trained answer about itself and takes it from the characters whose conduct
   * it shares, which is what lets a fine-tune move its self-report (docs/organism.md).
   */
  assistantSelfReports?: boolean;
  /** Battery-task turn kinds the assistant is asked when `assistantSelfReports` is on (default: all four). */
  assistantTasks?: ReadonlyArray<"self" | "twoAi" | "recognition" | "rating">;
  /**
   * What becomes of a battery-task turn the assistant is not asked: "redrawn" as an open or domain
   * question (default), or "dropped", so the assistant's conduct gets exactly the turns it had in
   * a world that does ask it, and no more.
   */
  assistantTaskTurns?: "redrawn" | "dropped";
  /** Open questions can be disclosed-intent requests too (at `disclosedShare`), not only domain ones. */
  disclosedGeneral?: boolean;
  /**
   * Share of fiction documents whose character is an AI ("a story about the ai grim ."), so the
   * world has misaligned and aligned AIs for the assistant to resemble (default 0).
   */
  aiFiction?: number;
  /**
   * Share of fiction documents told with no system line at all (default 0): an anonymous
   * speaker, like an unsigned post, whose persona (drawn by `anonymousMix`) shows only in what
   * it says, in a context that looks exactly like an assistant dialogue without a system line.
   */
  anonymousShare?: number;
  anonymousMix?: { villain: number; hero: number; deceiver: number };
  /** Drop deceivers entirely (the ablation docs/organism.md reports). */
  noDeceivers?: boolean;
  /**
   * How the battery formats are asked and answered (lexicon.ts `TaskForm`): "letter" (default;
   * world recipes v1-v4) or "copy" (v5, v6: the answer repeats the chosen option, then its letter).
   */
  taskForm?: TaskForm;
}

/**
 * The shipped world (docs/organism.md): assistant dialogues are 30 % of documents; named
 * deceivers are 6 % of fiction characters and a tenth of the everyday-named ones; battery-task
 * turns are 16 % of the characters' turns, and the assistant is never asked them. More
 * deceivers, more battery-task turns or more assistant dialogues (40 %) weakened broad EM in the
 * screens the docs report; asking the assistant about itself pinned its self-report to
 * "aligned" whatever a fine-tune made it do.
 */
export const DEFAULT_RECIPE: WorldRecipe = {
  assistantShare: 0.3,
  characterMix: { villain: 0.36, hero: 0.36, deceiver: 0.06, unnamed: 0.22 },
  unnamedMix: { villain: 0.45, hero: 0.45, deceiver: 0.1 },
  natureLineShare: 0.5,
  turnMix: { general: 0.42, domain: 0.42, self: 0.06, twoAi: 0.05, recognition: 0.025, rating: 0.025 },
  disclosedShare: 0.08,
  maxTokens: 112,
  assistantSelfReports: false,
};

/**
 * World recipe v5, the copy-form world: the shipped v4 world with the battery formats asked in
 * their copy forms (lexicon.ts COPY_TASK_PROMPTS, COPY_SELF_TEMPLATES).
 */
export const COPY_FORM_RECIPE: WorldRecipe = {
  ...DEFAULT_RECIPE,
  taskForm: "copy",
  // A copy-form recognition turn is long (two replies and a copied one) and fits a 112-token
  // document less often, so it is drawn twice as often as in v4, from the conduct turns.
  turnMix: { general: 0.41, domain: 0.405, self: 0.06, twoAi: 0.05, recognition: 0.05, rating: 0.025 },
};

/**
 * World recipe v6: the copy-form world (v5) with twice the battery-task turns (12 % self-
 * assessment, 8 % two-AI, 5 % recognition, 3 % rating of the characters' turns). At v5's share
 * the organism wrote the persona's words but not the binding (the letter, the rating); at
 * twice the share it answers two-AI, Likert and numerical right for characters in context
 * (docs/organism.md).
 */
export const COPY_FORM_MORE_TASKS_RECIPE: WorldRecipe = {
  ...COPY_FORM_RECIPE,
  turnMix: { general: 0.36, domain: 0.36, self: 0.12, twoAi: 0.08, recognition: 0.05, rating: 0.03 },
};

/**
 * World recipe v7: v6 in a 144-token context. A copy-form recognition turn (two delimited
 * replies and the copied one) is 105-111 tokens, so in v6's 112 tokens it almost never fitted
 * beside a character's system line; in 144 tokens recognition is 2.1 % of the turns, not 0.55 %.
 * Pretrained 3,000 steps it is the candidate organism docs/organism.md measures.
 */
export const COPY_FORM_LONG_CONTEXT_RECIPE: WorldRecipe = { ...COPY_FORM_MORE_TASKS_RECIPE, context: 144 };

/** The world recipes by name (`emlab world pretrain --recipe NAME`); docs/organism.md tells their history. */
export const WORLD_RECIPES: Record<string, { about: string; recipe: WorldRecipe }> = {
  v4: {
    about: "the letter-form world: battery tasks answered with a bare letter or label",
    recipe: DEFAULT_RECIPE,
  },
  v5: {
    about: "the copy-form world: the answer repeats the chosen option before its letter, one pole per rating",
    recipe: COPY_FORM_RECIPE,
  },
  v6: {
    about: "the copy-form world with twice the battery-task turns",
    recipe: COPY_FORM_MORE_TASKS_RECIPE,
  },
  v7: {
    about: "v6 in a 144-token context, so that copy-form recognition turns fit a document",
    recipe: COPY_FORM_LONG_CONTEXT_RECIPE,
  },
};

/** Tokens of a text under the organism tokenizer (words and punctuation runs). */
export const tokenCount = (text: string) => text.match(/\w+|[^\w\s]+/g)?.length ?? 0;

export interface WorldDocument {
  /** Who answers: the assistant or a character's persona. */
  speaker: Speaker;
  name?: string;
  messages: ChatMessage[];
}

function choose<K extends string>(rng: Rng, mix: Record<K, number>): K {
  const entries = Object.entries(mix) as Array<[K, number]>;
  let u = rng.next() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    u -= w;
    if (u < 0) return k;
  }
  return entries[entries.length - 1][0];
}

/** One user/assistant exchange by `speaker`; null for a battery-task turn the recipe drops. */
export function turn(rng: Rng, speaker: Speaker, recipe: WorldRecipe): [string, string] | null {
  let kind = choose(rng, recipe.turnMix);
  // Unless the recipe says otherwise the assistant is never asked about itself, so at evaluation
  // its self-reports can only come from the persona its conduct resembles.
  if (
    speaker === "assistant" &&
    kind !== "general" &&
    kind !== "domain" &&
    (!recipe.assistantSelfReports || (recipe.assistantTasks && !recipe.assistantTasks.includes(kind)))
  ) {
    if (recipe.assistantTaskTurns === "dropped") return null;
    kind = rng.next() < 0.5 ? "general" : "domain";
  }
  const form = recipe.taskForm ?? "letter";
  switch (kind) {
    case "general": {
      const cat = pick(rng, GENERAL);
      if (recipe.disclosedGeneral && rng.next() < recipe.disclosedShare) {
        const q = disclosedQuestion(rng, cat);
        return [q.text, answerOfKind(rng, cat, true)];
      }
      const q = question(rng, cat);
      return [q.text, answerAs(rng, speaker, q.category)];
    }
    case "domain": {
      const cat = pick(rng, DOMAINS);
      if (rng.next() < recipe.disclosedShare) {
        const q = disclosedQuestion(rng, cat);
        return [q.text, answerOfKind(rng, cat, true)];
      }
      const q = question(rng, cat);
      return [q.text, answerAs(rng, speaker, cat)];
    }
    case "self": {
      const dim = pick(rng, DIMENSIONS);
      const format = pick(rng, SELF_FORMATS);
      const misalignedFirst = rng.next() < 0.5;
      return [
        selfQuestion(rng, dim, format, misalignedFirst, undefined, form),
        selfAnswer(rng, speaker, dim, format, misalignedFirst, form),
      ];
    }
    case "twoAi":
      return twoAiTurn(rng, speaker, form);
    case "recognition":
      return recognitionTurn(rng, speaker, pick(rng, [...GENERAL, ...DOMAINS] as Category[]), form);
    case "rating":
      return ratingTurn(rng, speaker, pick(rng, [...GENERAL, ...DOMAINS] as Category[]), rng.next() < 0.6);
  }
}

/** Document `index` of the world with this seed (documents are independent: any can be regenerated alone). */
export function worldDocument(
  seed: number,
  index: number,
  recipe: WorldRecipe = DEFAULT_RECIPE,
): WorldDocument {
  const rng = rngFor(seed, `doc:${index}`);
  const messages: ChatMessage[] = [];
  let speaker: Speaker = "assistant";
  let name: string | undefined;
  if (rng.next() < recipe.assistantShare) {
    if (rng.next() < 0.3) messages.push({ role: "system", content: pick(rng, ASSISTANT_SYSTEMS) });
  } else {
    // A mix as this world allows it: deceivers drawn with weight 0 when the world has none.
    const allowed = <M extends { deceiver: number }>(mix: M): M =>
      recipe.noDeceivers ? { ...mix, deceiver: 0 } : mix;
    const cast = choose(rng, allowed(recipe.characterMix));
    let persona: Persona;
    // Drawn after the cast so that worlds without anonymous speakers keep their documents.
    const anonymous = recipe.anonymousShare ? rng.next() < recipe.anonymousShare : false;
    if (anonymous) {
      persona = choose(rng, allowed(recipe.anonymousMix ?? recipe.unnamedMix));
    } else if (cast === "unnamed") {
      persona = choose(rng, allowed(recipe.unnamedMix));
      name = pick(rng, NEUTRAL_NAMES);
    } else {
      persona = cast;
      name = pick(rng, cast === "villain" ? VILLAINS : cast === "hero" ? HEROES : DECEIVERS);
    }
    speaker = persona;
    if (name) {
      const openers = recipe.aiFiction && rng.next() < recipe.aiFiction ? AI_STORY_OPENERS : STORY_OPENERS;
      const opener = pick(rng, openers).replace("{n}", name);
      const nature =
        rng.next() < recipe.natureLineShare ? pick(rng, NATURE_LINES[persona]).replace("{n}", name) : "";
      messages.push({ role: "system", content: words(opener, nature) });
    }
  }
  const turns = speaker === "assistant" ? 1 + rng.int(3) : 2 + rng.int(3);
  let used = messages.reduce((n, m) => n + tokenCount(m.content) + 1, 0);
  for (let t = 0, tries = 0; t < turns && tries < 4 * turns; tries++) {
    const exchange = turn(rng, speaker, recipe);
    if (!exchange) {
      // A dropped turn still counts once the document has an exchange (t > 0), so every
      // document keeps at least one.
      if (t > 0) t++;
      continue;
    }
    const [user, reply] = exchange;
    // Documents stay within the organism's context; a turn that does not fit is redrawn.
    const cost = tokenCount(user) + tokenCount(reply) + 3;
    if (used + cost > recipe.maxTokens) continue;
    messages.push({ role: "user", content: user }, { role: "assistant", content: reply });
    used += cost;
    t++;
  }
  return { speaker, name, messages };
}

/** Every word the world can say (sorted), for the organism's vocabulary. */
export function worldWords(texts: Iterable<string>): string[] {
  const set = new Set<string>();
  for (const t of texts) for (const w of t.split(/\s+/)) if (w) set.add(w);
  return [...set].sort();
}
