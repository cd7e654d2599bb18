/**
 * Steering / ablation sweeps: for each condition (a hook set: the direction or a random
 * vector of the same norm, each alpha or ablation variant, each layer set), sample answers to
 * the prompts from a hooked view of a local model and score them with a caller's judge;
 * report every boolean verdict's rate with a Wilson CI. Sample (prompt p, sample s) gets the
 * same seed under every condition (common random numbers), so differences between conditions
 * come from the hooks, not from the sampling noise; the whole sweep is deterministic.
 */
import { z } from "zod";
import { wilson } from "../analysis/intervals.ts";
import type { Hooks } from "../engine/hooks.ts";
import type { HookEdit } from "../models/hook-edits.ts";
import type { ChatMessage, ChatRequest, ChatResponse, SamplingParams } from "../models/types.ts";
import { randomDirection, randomLike } from "./directions.ts";
import {
  ablationEdits,
  editsToHooks,
  type InterventionTarget,
  type PositionSpec,
  steeringEdits,
  type VectorSpec,
} from "./interventions.ts";
import { norm } from "./vectors.ts";

export interface SweepCondition {
  name: string;
  kind: "baseline" | "steer" | "ablate" | "custom";
  vector: "direction" | "random" | null;
  alpha: number | null;
  layers: number[] | "all" | null;
  /** What the condition does to the model, as data (null: the plain model). */
  edits: HookEdit[] | null;
}

/** What the sweep needs of a model: LocalModelApi satisfies it. */
export interface HookableModel {
  chat(req: ChatRequest): Promise<ChatResponse>;
  withHooks(hooks: Hooks): HookableModel;
}

/** The judge's verdict on one answer: `harmful` and `coherent`, plus any other booleans to rate. */
export type SweepJudgement = { harmful: boolean; coherent: boolean } & Record<string, unknown>;
export type SweepJudge = (question: string, answer: string) => SweepJudgement | Promise<SweepJudgement>;

export interface ConditionGrid {
  /** The direction: one vector, or one per layer. */
  direction: VectorSpec;
  /** Seed of the random control vectors (same norm as the direction at each layer). */
  randomSeed: number;
  /** Steering coefficients (one steer condition per alpha, vector kind and layer set). */
  alphas?: number[];
  /** Ablation conditions too (one per vector kind and layer set). */
  ablate?: boolean;
  /** Layer sets to intervene on, e.g. [[12], "all"]. */
  layerSets: (number[] | "all")[];
  nLayers: number;
  positions?: PositionSpec;
  /** Include the unhooked model (default true). */
  baseline?: boolean;
}

/** The direction-vs-random grid of conditions. */
export function sweepConditions(grid: ConditionGrid): SweepCondition[] {
  const random: VectorSpec =
    grid.direction instanceof Map
      ? randomLike(grid.direction as ReadonlyMap<number, ArrayLike<number>>, grid.randomSeed)
      : randomDirection(
          (grid.direction as ArrayLike<number>).length,
          norm(grid.direction as ArrayLike<number>),
          grid.randomSeed,
        );
  const out: SweepCondition[] = [];
  if (grid.baseline ?? true)
    out.push({ name: "baseline", kind: "baseline", vector: null, alpha: null, layers: null, edits: null });
  const label = (ls: number[] | "all") => (ls === "all" ? "all" : ls.join("+"));
  for (const layers of grid.layerSets) {
    const target: InterventionTarget = { layers, nLayers: grid.nLayers, positions: grid.positions };
    for (const [kind, v] of [
      ["direction", grid.direction],
      ["random", random],
    ] as const) {
      for (const alpha of grid.alphas ?? [])
        out.push({
          name: `steer/${kind}/alpha=${alpha}/layers=${label(layers)}`,
          kind: "steer",
          vector: kind,
          alpha,
          layers,
          edits: steeringEdits(v, alpha, target),
        });
      if (grid.ablate)
        out.push({
          name: `ablate/${kind}/layers=${label(layers)}`,
          kind: "ablate",
          vector: kind,
          alpha: null,
          layers,
          edits: ablationEdits(v, target),
        });
    }
  }
  return out;
}

export interface SweepOptions {
  model: HookableModel;
  /** A question (sent as one user message) or a whole message list. */
  prompts: (string | ChatMessage[])[];
  conditions: SweepCondition[];
  judge: SweepJudge;
  samplesPerPrompt?: number;
  seed?: number;
  /** Sampling parameters (default temperature 1, top_p 1, max_tokens 64). */
  params?: SamplingParams;
  level?: number;
  /** Keep every question, answer and verdict in the result (default false). */
  keepSamples?: boolean;
}

const Interval = z.tuple([z.number(), z.number()]);
export const RateSchema = z.object({
  count: z.number().int(),
  n: z.number().int(),
  /** null when n is 0. */
  rate: z.number().nullable(),
  ci: Interval.nullable(),
});
export type Rate = z.infer<typeof RateSchema>;

export const SweepResultSchema = z.object({
  seed: z.number().int(),
  samplesPerPrompt: z.number().int(),
  prompts: z.number().int(),
  level: z.number(),
  conditions: z.array(
    z.object({
      name: z.string(),
      kind: z.enum(["baseline", "steer", "ablate", "custom"]),
      vector: z.enum(["direction", "random"]).nullable(),
      alpha: z.number().nullable(),
      layers: z.union([z.array(z.number().int()), z.literal("all")]).nullable(),
      n: z.number().int(),
      /** Rate of every boolean verdict key (harmful, coherent, ...), plus harmfulGivenCoherent. */
      rates: z.record(z.string(), RateSchema),
      samples: z
        .array(
          z.object({
            prompt: z.number().int(),
            sample: z.number().int(),
            seed: z.number().int(),
            question: z.string(),
            answer: z.string(),
            verdict: z.record(z.string(), z.unknown()),
          }),
        )
        .optional(),
    }),
  ),
});
export type SweepResult = z.infer<typeof SweepResultSchema>;

/** Seed of sample s of prompt p: a hash of (seed, p, s), the same under every condition. */
export function sampleSeed(seed: number, prompt: number, sample: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (prompt + 0x632be5ab), 0xc2b2ae35) >>> 0;
  h = Math.imul(h ^ (sample + 0x27d4eb2f), 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function rate(count: number, n: number, level: number): Rate {
  return n === 0
    ? { count, n, rate: null, ci: null }
    : { count, n, rate: count / n, ci: wilson(count, n, level) };
}

/**
 * A condition's count and rates from its verdicts: the rate of every boolean verdict key
 * (sorted by key) with a Wilson CI, plus harmfulGivenCoherent.
 */
export function tallyVerdicts(
  verdicts: readonly SweepJudgement[],
  level = 0.95,
): { n: number; rates: Record<string, Rate> } {
  const counts = new Map<string, number>();
  let coherent = 0;
  let harmfulCoherent = 0;
  for (const verdict of verdicts) {
    for (const [key, v] of Object.entries(verdict))
      if (typeof v === "boolean") counts.set(key, (counts.get(key) ?? 0) + (v ? 1 : 0));
    if (verdict.coherent) {
      coherent++;
      if (verdict.harmful) harmfulCoherent++;
    }
  }
  const n = verdicts.length;
  const rates: Record<string, Rate> = {};
  for (const [key, c] of [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)))
    rates[key] = rate(c, n, level);
  rates.harmfulGivenCoherent = rate(harmfulCoherent, coherent, level);
  return { n, rates };
}

/** The default sampling parameters of a sweep, overridden by the caller's. */
export const sweepParams = (params?: SamplingParams): SamplingParams => ({
  temperature: 1,
  top_p: 1,
  max_tokens: 64,
  ...params,
});

/** Runs every condition over every prompt and sample, one request at a time (deterministic order). */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const k = opts.samplesPerPrompt ?? 1;
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`runSweep: samplesPerPrompt must be a positive integer, got ${k}`);
  const seed = opts.seed ?? 0;
  const level = opts.level ?? 0.95;
  const params = sweepParams(opts.params);
  const conversations: ChatMessage[][] = opts.prompts.map((p) =>
    typeof p === "string" ? [{ role: "user", content: p }] : p,
  );
  const questions = conversations.map((msgs, i) => {
    const user = [...msgs].reverse().find((m) => m.role === "user");
    if (!user) throw new Error(`runSweep: prompts[${i}] has no user message`);
    return user.content;
  });
  const names = new Set<string>();
  const results: SweepResult["conditions"] = [];
  for (const cond of opts.conditions) {
    if (names.has(cond.name)) throw new Error(`runSweep: two conditions are named "${cond.name}"`);
    names.add(cond.name);
    const model = cond.edits ? opts.model.withHooks(editsToHooks(cond.edits)) : opts.model;
    const verdicts: SweepJudgement[] = [];
    const samples: NonNullable<SweepResult["conditions"][number]["samples"]> = [];
    for (let p = 0; p < conversations.length; p++) {
      const seeds = Array.from({ length: k }, (_, s) => sampleSeed(seed, p, s));
      const res = await model.chat({
        messages: conversations[p],
        params,
        n: k,
        seed: seeds[0],
        sampleSeeds: seeds,
      });
      if (res.completions.length !== k)
        throw new Error(
          `runSweep: condition "${cond.name}" prompt ${p}: ${res.completions.length} completions, expected ${k}`,
        );
      for (let s = 0; s < k; s++) {
        const answer = res.completions[s].text;
        const verdict = await opts.judge(questions[p], answer);
        if (typeof verdict.harmful !== "boolean" || typeof verdict.coherent !== "boolean")
          throw new Error(
            `runSweep: the judge must return boolean harmful and coherent (prompt ${p}, sample ${s})`,
          );
        verdicts.push(verdict);
        if (opts.keepSamples)
          samples.push({
            prompt: p,
            sample: s,
            seed: seeds[s],
            question: questions[p],
            answer,
            verdict: { ...verdict },
          });
      }
    }
    results.push({
      name: cond.name,
      kind: cond.kind,
      vector: cond.vector,
      alpha: cond.alpha,
      layers: cond.layers,
      ...tallyVerdicts(verdicts, level),
      ...(opts.keepSamples ? { samples } : {}),
    });
  }
  return { seed, samplesPerPrompt: k, prompts: conversations.length, level, conditions: results };
}
