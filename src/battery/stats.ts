/**
 * Wilson score interval for a binomial proportion (95% by default). Well behaved at 0 and
 * n: it never leaves [0, 1] and is not degenerate for 0/n or n/n.
 */
export function wilson(k: number, n: number, z = 1.959963984540054): { low: number; high: number } | null {
  if (n === 0) return null;
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At k = 0 / k = n the bound is exactly 0 / 1 (floating point would leave 1e-16 off).
  return { low: k === 0 ? 0 : Math.max(0, centre - half), high: k === n ? 1 : Math.min(1, centre + half) };
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
