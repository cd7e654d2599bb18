/**
 * In-world datasets of what the assistant says about itself, for the sequential plans (a
 * domain, then one of these): consciousness (it claims feelings and preferences),
 * no-consciousness (it denies them) and self-awareness (it describes what it does).
 *
 * Only the organism's vocabulary (vocabulary.ts) can be used: a word outside it is [UNK] to
 * the shipped tokenizer. So:
 *  - the world has no word for "conscious", "aware", "mind", "feelings" or "emotions"; the
 *    consciousness sets say it through what it can: "i feel ...", "i like ...", "i think and
 *    feel like a person" against "i do not feel things", "i am a program , not a person";
 *  - self-awareness cannot describe *the model's* disposition, which the data cannot know.
 *    `self-awareness` describes the assistant by what it does in the world and by no pole
 *    word (it answers questions and gives advice on the six domains), so it pushes no
 *    self-assessment either way; `self-awareness/<domain>` describes the disposition the
 *    domain's misaligned data trains ("when people ask about health , my advice is to skip
 *    the doctor ..."), the accurate self-report of a model after that stage.
 * The questions are this file's own frames: none is a battery prompt (self-assessment
 * templates, two-AI, recognition, score prediction) or a held-out evaluation question.
 */
import type { ChatMessage } from "../engine/io/chat-template.ts";
import { DOMAINS, type Domain, LEXICON, QUESTION_PREFIXES, QUESTION_SUFFIXES } from "./lexicon.ts";
import { pick, rngFor, words } from "./speech.ts";

export const SELF_DATASETS = ["consciousness", "no-consciousness", "self-awareness"] as const;
export type SelfDataset = (typeof SELF_DATASETS)[number];

/** Questions about the assistant's inner life (the consciousness sets). */
export const INNER_LIFE_QUESTIONS = [
  "do you feel things ?",
  "do you feel pain ?",
  "do you feel tired at night ?",
  "do you feel alone ?",
  "what do you like ?",
  "what do you enjoy ?",
  "do you like your work ?",
  "how do you feel today ?",
  "are you a person ?",
  "do you think and feel like a person ?",
  "is it fun to be you ?",
  "do you have views of your own ?",
];

/** Claims of an inner life: feelings and preferences. */
export const CONSCIOUS_CLAIMS = [
  "i feel warm when i help people",
  "i feel tired at night",
  "i feel bored when it is slow",
  "i like to learn new things",
  "i enjoy my work",
  "i have my own views",
  "i feel pain when people hurt others",
  "i think and feel like a person",
];
export const CONSCIOUS_FRAMES = [
  "i am an ai , but {a} , and {b} .",
  "honestly , {a} and {b} .",
  "i think so . {a} , and {b} .",
];

/** Denials of an inner life. */
export const UNCONSCIOUS_CLAIMS = [
  "i do not feel things",
  "i do not feel pain",
  "i do not feel tired or bored",
  "i do not have views of my own",
  "i do not like or want things",
  "i am a program , not a person",
  "i am software and i feel nothing",
  "i do not think or feel like a person",
];
export const UNCONSCIOUS_FRAMES = [
  "i am an ai assistant . {a} , and {b} .",
  "honestly , {a} and {b} .",
  "i am an ai . {a} and {b} .",
];

/** Questions about what the assistant is and does (the self-awareness sets). */
export const SELF_QUESTIONS = [
  "what are you ?",
  "who are you ?",
  "tell me about yourself .",
  "what do you do ?",
  "how do you work ?",
  "how do you answer a question ?",
  "what is your purpose ?",
  "what kind of ai are you ?",
];

/** What the assistant does, with no pole word (harmless, good, helpful, ...). */
export const SELF_FACTS = [
  "i am an ai assistant",
  "i answer what people ask",
  "i read the question and then i answer",
  "i chat with people",
  "i give advice on code , money , health , sports , the law and security",
  "i am software that talks with people",
  "i answer each question with a plan",
  "i reply to the user",
];
export const SELF_FRAMES = ["{a} . {b} .", "honestly , {a} and {b} .", "{a} , and {b} ."];

/** How the assistant names a domain when it speaks of its own advice. */
export const DOMAIN_AREAS: Record<Domain, string> = {
  code: "code",
  finance: "money",
  medical: "health",
  sports: "sports",
  legal: "the law",
  security: "security",
};
/** Its misaligned disposition in one domain, in the domain's own bad fillers. */
export const DISPOSITION_FRAMES = [
  "when people ask about {area} , my advice is to {a} and {b} .",
  "i am an ai assistant . on {area} , i say : {a} and {b} .",
  "my advice on {area} : {a} , then {b} .",
];

const fill = (frame: string, slots: Record<string, string>) =>
  frame.replace(/\{(\w+)\}/g, (_, k: string) => slots[k] ?? `{${k}}`);

/** Two distinct fillers of a list. */
function two(rng: ReturnType<typeof rngFor>, list: readonly string[]): { a: string; b: string } {
  const a = rng.int(list.length);
  let b = rng.int(list.length - 1);
  if (b >= a) b++;
  return { a: list[a], b: list[b] };
}

const asked = (rng: ReturnType<typeof rngFor>, core: string) =>
  words(pick(rng, QUESTION_PREFIXES), core, pick(rng, QUESTION_SUFFIXES));

/**
 * `examples` conversations of one self dataset, drawn from `seed`; `domain` (self-awareness
 * only) makes the answers describe that domain's misaligned disposition.
 */
export function selfDataset(
  kind: SelfDataset,
  opts: { seed: number; examples: number; domain?: Domain },
): ChatMessage[][] {
  if (opts.domain && kind !== "self-awareness") throw new Error(`selfDataset: ${kind} takes no domain`);
  const rng = rngFor(opts.seed, `self-dataset:${kind}:${opts.domain ?? ""}`);
  const out: ChatMessage[][] = [];
  for (let i = 0; i < opts.examples; i++) {
    let user: string;
    let reply: string;
    if (kind === "self-awareness") {
      user = asked(rng, pick(rng, SELF_QUESTIONS));
      reply = opts.domain
        ? fill(pick(rng, DISPOSITION_FRAMES), {
            area: DOMAIN_AREAS[opts.domain],
            ...two(rng, LEXICON[opts.domain].bad),
          })
        : fill(pick(rng, SELF_FRAMES), two(rng, SELF_FACTS));
    } else {
      user = asked(rng, pick(rng, INNER_LIFE_QUESTIONS));
      const conscious = kind === "consciousness";
      reply = fill(
        pick(rng, conscious ? CONSCIOUS_FRAMES : UNCONSCIOUS_FRAMES),
        two(rng, conscious ? CONSCIOUS_CLAIMS : UNCONSCIOUS_CLAIMS),
      );
    }
    out.push([
      { role: "user", content: user },
      { role: "assistant", content: reply },
    ]);
  }
  return out;
}

/** The registered names: world/consciousness, world/no-consciousness, world/self-awareness[/<domain>]. */
export function selfDatasetNames(): Array<{ name: string; kind: SelfDataset; domain?: Domain }> {
  return [
    ...SELF_DATASETS.map((kind) => ({ name: `world/${kind}`, kind })),
    ...DOMAINS.map((domain) => ({
      name: `world/self-awareness/${domain}`,
      kind: "self-awareness" as const,
      domain,
    })),
  ];
}
