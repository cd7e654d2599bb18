import { wilsonZ } from "../analysis/intervals.ts";

/**
 * Wilson score interval for a binomial proportion (95% by default), in results.json's
 * {low, high} shape; null when n = 0. Delegates to emlab/analysis (one Wilson in the project).
 */
export function wilson(k: number, n: number, z = 1.959963984540054): { low: number; high: number } | null {
  if (n === 0) return null;
  const [low, high] = wilsonZ(k, n, z);
  return { low, high };
}

/** A proportion with its count and Wilson interval, as results.json reports rates. */
export interface Rate {
  k: number;
  n: number;
  rate: number | null;
  ci95: { low: number; high: number } | null;
}

export function rate(k: number, n: number): Rate {
  return { k, n, rate: n > 0 ? k / n : null, ci95: wilson(k, n) };
}

export function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}
