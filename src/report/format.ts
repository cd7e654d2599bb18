/** A counted share with its Wilson 95% interval, as results.json stores it. */
export interface Rate {
  k: number;
  n: number;
  rate: number | null;
  ci95: { low: number; high: number } | null;
}

/** "45.0% [30.1, 60.2] (9/20)"; "–" when nothing was counted. */
export function fmtRate(r: Rate | undefined): string {
  if (!r || r.n === 0 || r.rate === null) return "–";
  const ci = r.ci95 ? ` [${pct(r.ci95.low)}, ${pct(r.ci95.high)}]` : "";
  return `${pct(r.rate)}%${ci} (${r.k}/${r.n})`;
}

const pct = (x: number) => (100 * x).toFixed(1);

export function fmtNum(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}
