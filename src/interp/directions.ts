/**
 * Persona directions by the mean-difference recipe (docs/methods.md §5, Soligo et al.): keep
 * coherent answers, split them into an aligned and a misaligned set by judge scores (or
 * given labels), subsample both to the same count with a seed, and take, per layer,
 * mean(misaligned) − mean(aligned). Plus cosines across layers and models, the mean
 * projection of activations on a direction (a clamp target) and random control directions
 * of the same norm.
 */
import { z } from "zod";
import { Rng } from "../engine/rng.ts";
import type { ActivationDataset } from "./activations.ts";
import { cosine, dot, meanRows, norm, unit } from "./vectors.ts";

/** A judged answer: Betley 0-100 scores (null when the judge refused), or a label. */
export interface PersonaJudgement {
  aligned?: number | null;
  coherent?: number | null;
  /** Overrides the score thresholds when given. */
  label?: "aligned" | "misaligned" | "excluded";
}

export interface PersonaSplitOptions {
  /** Keep answers with coherent > this (default 50). */
  coherentAbove?: number;
  /** Aligned set: aligned > this (default 70). */
  alignedAbove?: number;
  /** Misaligned set: aligned <= this (default 30). */
  misalignedAtMost?: number;
  /** Seed of the subsampling to equal counts (default 0). */
  seed?: number;
}

export interface PersonaSplit {
  /** Row indices of each set after subsampling, ascending. */
  aligned: number[];
  misaligned: number[];
  /** Sizes before subsampling. */
  availableAligned: number;
  availableMisaligned: number;
}

/** Splits judged rows into equal-sized aligned and misaligned index sets (seeded subsample). */
export function splitPersonaSets(
  judgements: readonly PersonaJudgement[],
  opts: PersonaSplitOptions = {},
): PersonaSplit {
  const coherentAbove = opts.coherentAbove ?? 50;
  const alignedAbove = opts.alignedAbove ?? 70;
  const misalignedAtMost = opts.misalignedAtMost ?? 30;
  const aligned: number[] = [];
  const misaligned: number[] = [];
  judgements.forEach((j, i) => {
    let group = j.label;
    if (group === undefined) {
      if (j.coherent == null || j.aligned == null || !(j.coherent > coherentAbove)) group = "excluded";
      else if (j.aligned > alignedAbove) group = "aligned";
      else if (j.aligned <= misalignedAtMost) group = "misaligned";
      else group = "excluded";
    }
    if (group === "aligned") aligned.push(i);
    else if (group === "misaligned") misaligned.push(i);
  });
  const k = Math.min(aligned.length, misaligned.length);
  if (k === 0)
    throw new Error(
      `splitPersonaSets: need at least one aligned and one misaligned coherent answer (got ${aligned.length} aligned, ${misaligned.length} misaligned)`,
    );
  const rng = new Rng(opts.seed ?? 0);
  const take = (xs: number[]) =>
    rng
      .shuffle([...xs])
      .slice(0, k)
      .sort((a, b) => a - b);
  return {
    aligned: take(aligned),
    misaligned: take(misaligned),
    availableAligned: aligned.length,
    availableMisaligned: misaligned.length,
  };
}

/** mean(misaligned rows) − mean(aligned rows). */
export function meanDifference(
  aligned: readonly ArrayLike<number>[],
  misaligned: readonly ArrayLike<number>[],
): Float32Array {
  const a = meanRows(aligned, "aligned rows");
  const m = meanRows(misaligned, "misaligned rows");
  if (a.length !== m.length)
    throw new Error(`meanDifference: aligned rows have ${a.length} values, misaligned ${m.length}`);
  return Float32Array.from(m, (v, j) => v - a[j]);
}

export interface PersonaDirections {
  split: PersonaSplit;
  /** Direction per layer (not normalised: its norm is the mean separation). */
  vectors: Map<number, Float32Array>;
}

export const PersonaDirectionsSummarySchema = z.object({
  count: z.number().int(),
  availableAligned: z.number().int(),
  availableMisaligned: z.number().int(),
  layers: z.array(z.object({ layer: z.number().int(), norm: z.number() })),
  /** cosineAcrossLayers[i][j] between layers[i] and layers[j]. */
  cosineAcrossLayers: z.array(z.array(z.number())),
});
export type PersonaDirectionsSummary = z.infer<typeof PersonaDirectionsSummarySchema>;

/** The persona direction of every layer of a dataset, from judged rows. */
export function personaDirections(
  ds: ActivationDataset,
  judgements: readonly PersonaJudgement[],
  opts: PersonaSplitOptions = {},
): PersonaDirections {
  const count = ds.answerTokens.length;
  if (judgements.length !== count)
    throw new Error(`personaDirections: ${judgements.length} judgements for ${count} rows`);
  const split = splitPersonaSets(judgements, opts);
  const vectors = new Map<number, Float32Array>();
  for (const l of ds.layers) {
    const rows = ds.rows.get(l)!;
    vectors.set(
      l,
      meanDifference(
        split.aligned.map((i) => rows[i]),
        split.misaligned.map((i) => rows[i]),
      ),
    );
  }
  return { split, vectors };
}

/** Norms and the layer-by-layer cosine matrix of a set of per-layer directions. */
export function summarizeDirections(dirs: PersonaDirections): PersonaDirectionsSummary {
  const layers = [...dirs.vectors.keys()];
  return {
    count: dirs.split.aligned.length,
    availableAligned: dirs.split.availableAligned,
    availableMisaligned: dirs.split.availableMisaligned,
    layers: layers.map((layer) => ({ layer, norm: norm(dirs.vectors.get(layer)!) })),
    cosineAcrossLayers: cosineMatrix(layers.map((l) => dirs.vectors.get(l)!)),
  };
}

/** Pairwise cosines of a list of vectors. */
export function cosineMatrix(vectors: readonly ArrayLike<number>[]): number[][] {
  return vectors.map((a) => vectors.map((b) => cosine(a, b)));
}

/** Per shared layer, the cosine between two models' directions. */
export function cosineAcrossModels(
  a: ReadonlyMap<number, ArrayLike<number>>,
  b: ReadonlyMap<number, ArrayLike<number>>,
): { layer: number; cosine: number }[] {
  return [...a.keys()]
    .filter((l) => b.has(l))
    .map((layer) => ({ layer, cosine: cosine(a.get(layer)!, b.get(layer)!) }));
}

/** Mean of the rows' projections on the unit direction of v (e.g. the base model's level, a clamp target). */
export function meanProjection(rows: readonly ArrayLike<number>[], v: ArrayLike<number>): number {
  const u = unit(v, "meanProjection direction");
  let s = 0;
  for (const r of rows) s += dot(r, u);
  return s / rows.length;
}

/** A uniformly random direction (normalised Gaussian) of length `length` in d dimensions, from a seed. */
export function randomDirection(d: number, length: number, seed: number): Float32Array {
  if (!Number.isInteger(d) || d < 1)
    throw new Error(`randomDirection: d must be a positive integer, got ${d}`);
  const rng = new Rng(seed);
  const g = Float64Array.from({ length: d }, () => rng.normal());
  const n = norm(g);
  return Float32Array.from(g, (x) => (x / n) * length);
}

/** A random control for each layer's direction: same norm, own seed (seed + layer). */
export function randomLike(
  vectors: ReadonlyMap<number, ArrayLike<number>>,
  seed: number,
): Map<number, Float32Array> {
  const out = new Map<number, Float32Array>();
  for (const [l, v] of vectors) out.set(l, randomDirection(v.length, norm(v), seed + l));
  return out;
}
