import { cholesky, choleskyInverse, designMatrix } from "./linalg.ts";
import { studentTTwoSided } from "./special.ts";

export type LinearRegression = {
  /** Coefficients, intercept first when `intercept` is on. */
  coef: number[];
  se: number[];
  t: number[];
  /** Two-sided p-values from t with n − p df (statsmodels OLS). */
  p: number[];
  rSquared: number;
  residuals: number[];
  df: number;
};

/** Ordinary least squares with classical standard errors (statsmodels OLS, nonrobust). */
export function linearRegression(
  X: readonly (readonly number[])[],
  y: readonly number[],
  opts: { intercept?: boolean } = {},
): LinearRegression {
  const intercept = opts.intercept ?? true;
  const A = designMatrix(X, intercept, "linearRegression");
  const n = A.length;
  const p = A[0]!.length;
  if (!Array.isArray(y) || y.length !== n)
    throw new RangeError(`linearRegression: y must have ${n} entries, got ${y?.length}`);
  y.forEach((v, i) => {
    if (!Number.isFinite(v))
      throw new RangeError(`linearRegression: y[${i}] must be a finite number, got ${String(v)}`);
  });
  if (n <= p) throw new RangeError(`linearRegression: needs more rows (${n}) than coefficients (${p})`);
  const xtx = Array.from({ length: p }, (_, j) =>
    Array.from({ length: p }, (_, k) => A.reduce((s, row) => s + row[j]! * row[k]!, 0)),
  );
  const xty = Array.from({ length: p }, (_, j) => A.reduce((s, row, i) => s + row[j]! * y[i]!, 0));
  const inv = choleskyInverse(cholesky(xtx, "linearRegression (Xᵀ X)"));
  const coef = inv.map((row) => row.reduce((s, v, k) => s + v * xty[k]!, 0));
  const residuals = A.map((row, i) => y[i]! - row.reduce((s, v, j) => s + v * coef[j]!, 0));
  const df = n - p;
  const sse = residuals.reduce((s, r) => s + r * r, 0);
  const sigma2 = sse / df;
  const se = inv.map((row, j) => Math.sqrt(sigma2 * row[j]!));
  const t = coef.map((c, j) => c / se[j]!);
  const ybar = y.reduce((a, b) => a + b, 0) / n;
  const sst = intercept ? y.reduce((s, v) => s + (v - ybar) ** 2, 0) : y.reduce((s, v) => s + v * v, 0);
  return {
    coef,
    se,
    t,
    // An exact fit gives se = 0: t = ±∞ (p 0), or NaN for a zero coefficient (p undefined).
    p: t.map((v) => (Number.isNaN(v) ? Number.NaN : studentTTwoSided(v, df))),
    rSquared: sst > 0 ? 1 - sse / sst : Number.NaN,
    residuals,
    df,
  };
}
