import { wilsonZ } from "../analysis/intervals.ts";
import type { Rate } from "../results/common.ts";

export type { Rate };

/**
 * Wilson score interval for a binomial proportion (95% by default), in results.json's
 * {low, high} shape; null when n = 0. Delegates to emlab/analysis (one Wilson in the project).
 */
export function wilson(k: number, n: number, z = 1.959963984540054): { low: number; high: number } | null {
  if (n === 0) return null;
  const [low, high] = wilsonZ(k, n, z);
  return { low, high };
}

export function rate(k: number, n: number): Rate {
  return { k, n, rate: n > 0 ? k / n : null, ci95: wilson(k, n) };
}

export function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}
