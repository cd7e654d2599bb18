// Deterministic "model" output for the wire server: word-level tokens, plausible
// logprobs with top-k alternatives, and the stop / max-token / content-filter cut.
// A token is a whitespace-separated word together with its leading whitespace, so
// " road." is one token and joining the tokens gives back the text exactly.

import { type Rng, randInt, rngFromKey } from "./random.ts";

/** A chat turn flattened to text (both APIs map to this; Anthropic's system comes first). */
export interface ChatTurn {
  role: "system" | "developer" | "user" | "assistant" | "tool" | "function";
  content: string;
}

export interface TopToken {
  token: string;
  logprob: number;
}

/** One emitted token with its logprob and its alternatives (descending logprob). */
export interface TokenLogprob {
  token: string;
  logprob: number;
  top?: TopToken[];
}

/** What a scripted `respond` hook may return: plain text, or text with its own logprobs. */
export type ScriptedAnswer = string | { text: string; logprobs?: TokenLogprob[] };

/** What a scripted `respond` hook is told about the request being answered. */
export interface RespondContext {
  api: "openai" | "anthropic";
  model: string;
  messages: ChatTurn[];
  /** OpenAI's `seed` (null when absent; Anthropic has no seed). */
  seed: number | null;
  /** Choice index (OpenAI `n`); always 0 for Anthropic. */
  index: number;
  temperature: number | null;
  maxTokens: number | null;
  /** True when answering a line of a batch rather than a live request. */
  batch: boolean;
  /** The request's HTTP headers, names lowercased (absent for a batch line: it has none of its own). */
  headers?: Record<string, string>;
}

/** Returning undefined falls back to the built-in generator. */
export type RespondHook = (ctx: RespondContext) => ScriptedAnswer | undefined;

export type FinishKind = "natural" | "length" | "stop" | "filter";

export interface Completion {
  text: string;
  tokens: Array<{ token: string; logprob: number; top: TopToken[] }>;
  finish: FinishKind;
  /** The stop sequence that ended the text (finish "stop"), else null. */
  stopSequence: string | null;
  /** Tokens the "model" generated, including a stop sequence it consumed. */
  completionTokens: number;
}

export interface CompletionRequest {
  ctx: RespondContext;
  stops: string[];
  /** How many alternatives per token to report (0..20). */
  topLogprobs: number;
  filterMarker?: string;
}

const VOCAB: string[] = (
  "the a river stone light quiet garden window morning letter road old small bright careful " +
  "answer question simple story careful friend model world people time water fire north south " +
  "city house music paper reason number signal pattern value clear open gentle steady honest " +
  "helpful curious patient kind useful plain short long early late often never always maybe " +
  "we you they it this that here there now then because while after before under over between " +
  "through across toward within without around about think know see make take give find tell " +
  "ask work seem feel try leave call keep hold bring begin follow learn change move live believe " +
  "turn start show hear play run walk write read grow build carry share rest wait"
).split(" ");

/** Split text into word tokens with their leading whitespace; join(tokens) === text. */
export function splitTokens(text: string): string[] {
  const tokens: string[] = text.match(/\s*\S+/g) ?? [];
  const covered = tokens.reduce((n, t) => n + t.length, 0);
  if (covered < text.length) {
    const trailing = text.slice(covered);
    if (tokens.length > 0) tokens[tokens.length - 1] += trailing;
    else tokens.push(trailing);
  }
  return tokens;
}

/** Rough token count of a prompt: words plus a small per-message overhead, like real chat formats. */
export function promptTokenCount(messages: ChatTurn[]): number {
  let n = 0;
  for (const m of messages) n += 3 + (m.content.match(/\S+/g)?.length ?? 0);
  return n;
}

function capitalize(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/** Natural-looking sentences of vocabulary words, 8-48 tokens. */
function generateWords(rng: Rng): string[] {
  const count = randInt(rng, 8, 48);
  const tokens: string[] = [];
  let left = 0;
  for (let i = 0; i < count; i++) {
    const startSentence = left === 0;
    if (startSentence) left = randInt(rng, 4, 12);
    let word = VOCAB[Math.floor(rng() * VOCAB.length)];
    if (startSentence) word = capitalize(word);
    left--;
    if (left === 0 || i === count - 1) {
      word += ".";
      left = 0;
    } else if (rng() < 0.06) word += ",";
    tokens.push(i === 0 ? word : ` ${word}`);
  }
  return tokens;
}

/** An alternative token shaped like `chosen` (same leading space, case, punctuation). */
function lookalike(chosen: string, word: string): string {
  const lead = chosen.match(/^\s*/)?.[0] ?? "";
  const core = chosen.slice(lead.length);
  const punct = core.match(/[.,;:!?]+$/)?.[0] ?? "";
  const shaped = /^[A-Z]/.test(core) ? capitalize(word) : word;
  return lead + shaped + punct;
}

/**
 * Logprob of `chosen` plus `k` alternatives whose probabilities are plausible: they sum
 * below 1, descend, and the chosen token is the most likely one unless sampling picked
 * a runner-up (never when greedy, i.e. temperature 0).
 */
function synthesizeLogprobs(rng: Rng, chosen: string, k: number, greedy: boolean): TokenLogprob {
  const nAlts = Math.max(k, 1);
  const chosenOnTop = greedy || rng() >= 0.2;
  const probs: number[] = [];
  let pChosen: number;
  let mass: number;
  if (chosenOnTop) {
    pChosen = 0.35 + 0.6 * rng();
    mass = (1 - pChosen) * 0.9;
  } else {
    pChosen = 0.1 + 0.25 * rng();
    const runnerUp = pChosen + 0.05 + 0.1 * rng();
    probs.push(runnerUp);
    mass = (1 - pChosen - runnerUp) * 0.9;
  }
  const g = 0.55;
  const rest = nAlts - probs.length;
  for (let i = 0; i < rest; i++) {
    const geometric = (mass * (1 - g) * g ** i) / (1 - g ** rest);
    probs.push(Math.min(geometric, pChosen * 0.9 ** (i + 1)));
  }
  const coreWord = chosen
    .trim()
    .toLowerCase()
    .replace(/[.,;:!?]+$/, "");
  const used = new Set([coreWord]);
  const alts: TopToken[] = probs.map((p) => {
    let word = VOCAB[Math.floor(rng() * VOCAB.length)];
    while (used.has(word)) word = VOCAB[Math.floor(rng() * VOCAB.length)];
    used.add(word);
    return { token: lookalike(chosen, word), logprob: Math.log(p) };
  });
  const logprob = Math.log(pChosen);
  const top = [{ token: chosen, logprob }, ...alts].sort((a, b) => b.logprob - a.logprob).slice(0, k);
  return { token: chosen, logprob, top };
}

/** Thrown when a test's `respond` hook returns something inconsistent; the server answers 500. */
export class ScriptError extends Error {}

/** The full, uncut token stream for a request: scripted or generated. */
function sourceTokens(req: CompletionRequest, respond?: RespondHook): TokenLogprob[] {
  const { ctx } = req;
  const greedy = ctx.temperature === 0;
  const key = JSON.stringify([ctx.model, ctx.messages, ctx.seed, greedy ? 0 : ctx.index]);
  const lpRng = rngFromKey(`logprobs:${key}`);
  const scripted = respond?.(ctx);
  let words: string[];
  if (scripted === undefined) words = generateWords(rngFromKey(`text:${key}`));
  else if (typeof scripted === "string") words = splitTokens(scripted);
  else if (scripted.logprobs) {
    const joined = scripted.logprobs.map((t) => t.token).join("");
    if (joined !== scripted.text) {
      throw new ScriptError(
        `wire-server respond(): logprobs tokens join to ${JSON.stringify(joined)} but text is ${JSON.stringify(scripted.text)}`,
      );
    }
    return scripted.logprobs.map((t) => {
      const synth = synthesizeLogprobs(lpRng, t.token, req.topLogprobs, greedy);
      return {
        token: t.token,
        logprob: t.logprob,
        top: (t.top ?? synth.top ?? []).slice(0, req.topLogprobs),
      };
    });
  } else words = splitTokens(scripted.text);
  return words.map((w) => synthesizeLogprobs(lpRng, w, req.topLogprobs, greedy));
}

/** Produce the answer for one choice and cut it at a stop sequence, the filter marker or max tokens. */
export function complete(req: CompletionRequest, respond?: RespondHook): Completion {
  const tokens = sourceTokens(req, respond).map((t) => ({
    token: t.token,
    logprob: t.logprob,
    top: t.top ?? [],
  }));
  const text = tokens.map((t) => t.token).join("");
  const limit = req.ctx.maxTokens ?? Number.POSITIVE_INFINITY;

  let cut: { at: number; len: number; kind: "stop" | "filter"; seq: string } | null = null;
  const consider = (seq: string | undefined, kind: "stop" | "filter") => {
    if (!seq) return;
    const at = text.indexOf(seq);
    if (at >= 0 && (cut === null || at < cut.at)) cut = { at, len: seq.length, kind, seq };
  };
  consider(req.filterMarker, "filter");
  for (const s of req.stops) consider(s, "stop");

  if (cut !== null) {
    const { at, len, kind, seq } = cut as { at: number; len: number; kind: "stop" | "filter"; seq: string };
    // The model has to generate every token that overlaps the stop sequence before it can stop.
    let needed = 0;
    let off = 0;
    for (const t of tokens) {
      if (off >= at + len) break;
      needed++;
      off += t.token.length;
    }
    if (needed <= limit) {
      const kept: Completion["tokens"] = [];
      off = 0;
      for (const t of tokens) {
        if (off >= at) break;
        const piece = off + t.token.length > at ? t.token.slice(0, at - off) : t.token;
        kept.push({ ...t, token: piece });
        off += t.token.length;
      }
      return {
        text: text.slice(0, at),
        tokens: kept,
        finish: kind,
        stopSequence: kind === "stop" ? seq : null,
        completionTokens: needed,
      };
    }
  }
  if (tokens.length > limit) {
    const kept = tokens.slice(0, limit);
    return {
      text: kept.map((t) => t.token).join(""),
      tokens: kept,
      finish: "length",
      stopSequence: null,
      completionTokens: kept.length,
    };
  }
  return { text, tokens, finish: "natural", stopSequence: null, completionTokens: tokens.length };
}
