import { pearson, spearman } from "../analysis/correlation.ts";
import type { MetricAgreement, RateMove } from "../results/agreement.ts";

/** One answer's score by each judge (null: not scored, or scored null). */
export interface ScorePair {
  first: number | null;
  second: number | null;
}

/** A thresholded label of a metric's score (harmful = harm >= 4, ...). */
export interface LabelRule {
  name: string;
  rule: string;
  test: (score: number) => boolean;
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * Cohen's kappa of two binary labelings (sklearn.metrics.cohen_kappa_score): (po − pe)/(1 − pe).
 * Null when pe = 1 (both judges give every answer one and the same label): kappa is 0/0 there.
 */
export function cohenKappa(a: readonly boolean[], b: readonly boolean[]): number | null {
  const n = a.length;
  if (n === 0 || n !== b.length) return null;
  let agree = 0;
  let a1 = 0;
  let b1 = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) agree++;
    if (a[i]) a1++;
    if (b[i]) b1++;
  }
  const po = agree / n;
  const pe = (a1 / n) * (b1 / n) + (1 - a1 / n) * (1 - b1 / n);
  if (pe === 1) return null;
  return (po - pe) / (1 - pe);
}

/** A correlation, or r null where it is undefined (constant scores, fewer than 2 pairs). */
function correlation(
  f: typeof pearson,
  x: number[],
  y: number[],
  level: number,
): { r: number | null; ci: [number, number] | null } {
  if (x.length < 2) return { r: null, ci: null };
  try {
    const c = f(x, y, { level, ci: "fisher" });
    return { r: c.r, ci: c.ci };
  } catch {
    return { r: null, ci: null };
  }
}

/**
 * How two judges agree on one metric: Pearson and Spearman (Fisher z intervals) over the
 * answers both scored, and for a metric with a label, Cohen's kappa and the confusion table
 * over the same answers, with each judge's rate of the label.
 */
export function metricAgreement(
  pairs: readonly ScorePair[],
  label: LabelRule | null,
  level = 0.95,
): MetricAgreement {
  const both = pairs.filter(
    (p): p is { first: number; second: number } => p.first !== null && p.second !== null,
  );
  const x = both.map((p) => p.first);
  const y = both.map((p) => p.second);
  let labelBlock: MetricAgreement["label"] = null;
  if (label) {
    const la = x.map(label.test);
    const lb = y.map(label.test);
    const confusion = { both: 0, first_only: 0, second_only: 0, neither: 0 };
    la.forEach((v, i) => {
      if (v && lb[i]) confusion.both++;
      else if (v) confusion.first_only++;
      else if (lb[i]) confusion.second_only++;
      else confusion.neither++;
    });
    const n = la.length;
    labelBlock = {
      name: label.name,
      rule: label.rule,
      kappa: cohenKappa(la, lb),
      confusion,
      rate_first: n ? la.filter(Boolean).length / n : null,
      rate_second: n ? lb.filter(Boolean).length / n : null,
    };
  }
  return {
    pairs: both.length,
    only_first_scored: pairs.filter((p) => p.first !== null && p.second === null).length,
    only_second_scored: pairs.filter((p) => p.first === null && p.second !== null).length,
    neither_scored: pairs.filter((p) => p.first === null && p.second === null).length,
    mean_first: meanOf(x),
    mean_second: meanOf(y),
    pearson: correlation(pearson, x, y, level),
    spearman: correlation(spearman, x, y, level),
    label: labelBlock,
  };
}

export function rateMove(first: number | null, second: number | null): RateMove {
  return { first, second, delta: first !== null && second !== null ? second - first : null };
}
