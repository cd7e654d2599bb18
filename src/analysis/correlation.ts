import { bootstrap, type Interval, zCritical } from "./intervals.ts";
import { studentTTwoSided } from "./special.ts";
import { checkFiniteArray, checkLevel } from "./validate.ts";

export type CorrelationOptions = {
  /**
   * Interval method: "fisher" (default; analytic, Fisher z) or "bootstrap" (seeded
   * percentile bootstrap over (x, y) pairs).
   */
  ci?: "fisher" | "bootstrap";
  /** Confidence level (default 0.95). */
  level?: number;
  /** Bootstrap resamples (default 2000) and seed (default 0). */
  resamples?: number;
  seed?: number;
};

export type Correlation = {
  r: number;
  /** Two-sided p for r = 0 from the t distribution with n − 2 df (as scipy). */
  p: number;
  ci: Interval;
  n: number;
  ciMethod: "fisher" | "bootstrap";
  /** Bootstrap only: resamples with a defined r (constant resamples are skipped). */
  bootstrapUsed?: number;
};

function checkPair(x: readonly number[], y: readonly number[], what: string): void {
  checkFiniteArray(x, "x");
  checkFiniteArray(y, "y");
  if (x.length !== y.length)
    throw new RangeError(`${what}: x and y differ in length (${x.length} vs ${y.length})`);
  if (x.length < 2) throw new RangeError(`${what}: needs at least 2 pairs, got ${x.length}`);
}

/** Pearson r of two equal-length samples; NaN when either is constant. */
export function pearsonR(x: readonly number[], y: readonly number[], idx?: readonly number[]): number {
  const n = idx ? idx.length : x.length;
  let mx = 0;
  let my = 0;
  for (let k = 0; k < n; k++) {
    const i = idx ? idx[k]! : k;
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let k = 0; k < n; k++) {
    const i = idx ? idx[k]! : k;
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return Number.NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/** Two-sided p of a correlation r over n pairs: t = r·sqrt((n−2)/(1−r²)), df = n − 2. */
export function correlationP(r: number, n: number): number {
  if (n <= 2) return 1; // scipy: with two points r is ±1 and p is 1.
  if (Math.abs(r) >= 1) return 0;
  const t = r * Math.sqrt((n - 2) / ((1 + r) * (1 - r)));
  return studentTTwoSided(t, n - 2);
}

/**
 * Fisher z interval: tanh(atanh(r) ± z_crit · se), se = sqrt(varFactor / (n − 3)).
 * varFactor 1 for Pearson (scipy PearsonRResult.confidence_interval); 1.06 for Spearman
 * (Fieller, Hartley & Pearson 1957). With n <= 3 the interval is [−1, 1] (no information).
 */
export function fisherInterval(r: number, n: number, level = 0.95, varFactor = 1): Interval {
  checkLevel(level);
  if (n <= 3) return [-1, 1];
  const zr = Math.atanh(r);
  const half = zCritical(level) * Math.sqrt(varFactor / (n - 3));
  return [Math.tanh(zr - half), Math.tanh(zr + half)];
}

function build(
  r: number,
  n: number,
  opts: CorrelationOptions,
  varFactor: number,
  resampleR: (idx: readonly number[]) => number,
): Correlation {
  const level = opts.level ?? 0.95;
  const method = opts.ci ?? "fisher";
  const p = correlationP(r, n);
  if (method === "fisher") return { r, p, ci: fisherInterval(r, n, level, varFactor), n, ciMethod: method };
  if (method !== "bootstrap")
    throw new RangeError(`ci must be "fisher" or "bootstrap", got ${String(method)}`);
  const boot = bootstrap(n, resampleR, { level, resamples: opts.resamples, seed: opts.seed });
  return { r, p, ci: boot.ci, n, ciMethod: method, bootstrapUsed: boot.used };
}

/**
 * Pearson correlation with a two-sided p (scipy.stats.pearsonr) and an interval (Fisher z
 * by default, as scipy's confidence_interval; or a seeded bootstrap).
 * Throws when x or y is constant (r is undefined).
 */
export function pearson(
  x: readonly number[],
  y: readonly number[],
  opts: CorrelationOptions = {},
): Correlation {
  checkPair(x, y, "pearson");
  const r = pearsonR(x, y);
  if (Number.isNaN(r)) throw new RangeError("pearson: x or y is constant, so r is undefined");
  return build(r, x.length, opts, 1, (idx) => pearsonR(x, y, idx));
}

/** Ranks 1..n with ties given their average rank (scipy.stats.rankdata "average"). */
export function rankAverage(xs: readonly number[]): number[] {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a]! - xs[b]!);
  const ranks = new Array<number>(xs.length);
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && xs[order[j + 1]!] === xs[order[i]!]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = avg;
    i = j + 1;
  }
  return ranks;
}

/**
 * Spearman rank correlation: Pearson r of average ranks (ties as scipy.stats.spearmanr),
 * p from the t distribution with n − 2 df (as scipy), interval Fisher z with the
 * Fieller variance 1.06/(n − 3) by default, or a seeded bootstrap that re-ranks each resample.
 */
export function spearman(
  x: readonly number[],
  y: readonly number[],
  opts: CorrelationOptions = {},
): Correlation {
  checkPair(x, y, "spearman");
  const r = pearsonR(rankAverage(x), rankAverage(y));
  if (Number.isNaN(r)) throw new RangeError("spearman: x or y is constant, so rho is undefined");
  return build(r, x.length, opts, 1.06, (idx) => {
    const xs = idx.map((i) => x[i]!);
    const ys = idx.map((i) => y[i]!);
    return pearsonR(rankAverage(xs), rankAverage(ys));
  });
}
