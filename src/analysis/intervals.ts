import { seededRandom } from "./random.ts";
import { normalQuantile } from "./special.ts";
import { checkFiniteArray, checkLevel, mean } from "./validate.ts";

export type Interval = [lo: number, hi: number];

/** Two-sided critical value of the standard normal for a confidence level. */
export function zCritical(level = 0.95): number {
  checkLevel(level);
  return normalQuantile(1 - (1 - level) / 2);
}

/**
 * Wilson score interval for `successes` out of `n` given the normal critical value `z`
 * (statsmodels proportion_confint(method="wilson")). The bounds are exactly 0 / 1 at
 * k = 0 / k = n, where floating point would leave 1e-17 off.
 */
export function wilsonZ(successes: number, n: number, z: number): Interval {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`wilson: n must be a positive integer, got ${n}`);
  if (!(successes >= 0 && successes <= n)) {
    throw new RangeError(`wilson: successes must be in [0, n=${n}], got ${successes}`);
  }
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [successes === 0 ? 0 : Math.max(0, centre - half), successes === n ? 1 : Math.min(1, centre + half)];
}

/** Wilson score interval at a confidence level (default 95%). */
export function wilson(successes: number, n: number, level = 0.95): Interval {
  return wilsonZ(successes, n, zCritical(level));
}

/**
 * Quantile of sorted values by linear interpolation between order statistics
 * (numpy.percentile's default "linear" method), q in [0, 1].
 */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError("quantile of an empty array");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Quantile of unsorted values (numpy.quantile, linear). */
export function quantile(xs: readonly number[], q: number): number {
  checkFiniteArray(xs, "xs");
  return quantileSorted(
    [...xs].sort((a, b) => a - b),
    q,
  );
}

export type BootstrapOptions = {
  /** Number of resamples (default 2000). */
  resamples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: number;
};

export type BootstrapResult = {
  ci: Interval;
  /** Resamples whose statistic was finite (the others are degenerate, e.g. constant data). */
  used: number;
  skipped: number;
};

const DEFAULT_RESAMPLES = 2000;

function resolve(opts: BootstrapOptions): Required<BootstrapOptions> {
  const resamples = opts.resamples ?? DEFAULT_RESAMPLES;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  }
  const level = opts.level ?? 0.95;
  checkLevel(level);
  return { resamples, level, seed: opts.seed ?? 0 };
}

/**
 * Seeded percentile bootstrap over `n` units: `statistic` gets the resampled indices (drawn
 * with replacement) and returns a number; non-finite results (degenerate resamples) are
 * skipped and counted. The interval is the (α/2, 1−α/2) quantiles of the finite results.
 */
export function bootstrap(
  n: number,
  statistic: (indices: readonly number[]) => number,
  opts: BootstrapOptions = {},
): BootstrapResult & { values: number[] } {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`bootstrap: n must be a positive integer, got ${n}`);
  const { resamples, level, seed } = resolve(opts);
  const rng = seededRandom(seed);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    const v = statistic(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) throw new RangeError("bootstrap: every resample gave a non-finite statistic");
  values.sort((a, b) => a - b);
  const alpha = 1 - level;
  return {
    ci: [quantileSorted(values, alpha / 2), quantileSorted(values, 1 - alpha / 2)],
    used: values.length,
    skipped: resamples - values.length,
    values,
  };
}

/** Seeded percentile bootstrap interval of the mean of `xs`. */
export function bootstrapMeanCi(xs: readonly number[], opts: BootstrapOptions = {}): BootstrapResult {
  checkFiniteArray(xs, "xs");
  const { ci, used, skipped } = bootstrap(
    xs.length,
    (idx) => {
      let s = 0;
      for (const i of idx) s += xs[i]!;
      return s / idx.length;
    },
    opts,
  );
  return { ci, used, skipped };
}

export type PairedBootstrapResult = {
  /** mean(a) − mean(b) over the paired items. */
  difference: number;
  ci: Interval;
  /**
   * Two-sided p for "no difference": the share of resampled differences, centred on the
   * observed one, at least as far from it as the observed difference is from 0, with the
   * +1 correction so p is never 0: (1 + #{|d* − d| >= |d|}) / (B + 1).
   */
  p: number;
  n: number;
  resamples: number;
};

/**
 * Paired bootstrap between two models scored on the same items: `a[i]` and `b[i]` are the
 * two models' scores on item i. Items are resampled together, so item difficulty cancels.
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  opts: BootstrapOptions = {},
): PairedBootstrapResult {
  checkFiniteArray(a, "a");
  checkFiniteArray(b, "b");
  if (a.length !== b.length)
    throw new RangeError(`pairedBootstrap: a and b differ in length (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new RangeError("pairedBootstrap: no items");
  const diffs = a.map((x, i) => x - b[i]!);
  const d = mean(diffs);
  const { resamples } = resolve(opts);
  const { ci, values } = bootstrap(
    diffs.length,
    (idx) => {
      let s = 0;
      for (const i of idx) s += diffs[i]!;
      return s / idx.length;
    },
    opts,
  );
  const ad = Math.abs(d);
  // Tolerance so the centred null does not count float noise as "as extreme".
  const tol = 1e-12 * Math.max(1, ad);
  let extreme = 0;
  for (const v of values) if (Math.abs(v - d) >= ad - tol) extreme++;
  return { difference: d, ci, p: (1 + extreme) / (resamples + 1), n: diffs.length, resamples };
}
