import { cholesky, choleskyInverse, choleskySolve, designMatrix } from "./linalg.ts";
import { normalSf } from "./special.ts";

export type LogisticOptions = {
  /** Prepend a column of ones; coef[0] is then the intercept (default true). */
  intercept?: boolean;
  /** Newton/IRLS iterations before giving up (default 100). */
  maxIter?: number;
  /** Converged when every |Δβ| <= tol (default 1e-10). */
  tol?: number;
};

export type LogisticRegression = {
  /** Coefficients, intercept first when `intercept` is on. */
  coef: number[];
  /** Standard errors: sqrt of the diagonal of (Xᵀ W X)⁻¹ at the estimate. */
  se: number[];
  /** Wald z = coef / se. */
  z: number[];
  /** Two-sided Wald p-values, 2·(1 − Φ(|z|)), as statsmodels Logit. */
  p: number[];
  /** Covariance matrix of the coefficients. */
  cov: number[][];
  logLikelihood: number;
  iterations: number;
  intercept: boolean;
};

function sigmoid(eta: number): number {
  return eta >= 0 ? 1 / (1 + Math.exp(-eta)) : Math.exp(eta) / (1 + Math.exp(eta));
}

/** log(1 + e^x) without overflow. */
function log1pExp(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * Maximum-likelihood logistic regression by Newton's method (IRLS), matching statsmodels
 * `Logit(y, X).fit(method="newton")`: standard errors from the inverse observed information
 * at the estimate, Wald z p-values. Unlike statsmodels, an intercept column is added by
 * default (`intercept: false` to fit X as given). Throws on perfect separation or when the
 * fit does not converge, since the MLE then does not exist.
 */
export function logisticRegression(
  X: readonly (readonly number[])[],
  y: readonly number[],
  opts: LogisticOptions = {},
): LogisticRegression {
  const intercept = opts.intercept ?? true;
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-10;
  const A = designMatrix(X, intercept, "logisticRegression");
  const n = A.length;
  const p = A[0]!.length;
  if (p === 0) throw new RangeError("logisticRegression: X has no columns and no intercept");
  if (!Array.isArray(y) || y.length !== n)
    throw new RangeError(`logisticRegression: y must have ${n} entries (one per row of X), got ${y?.length}`);
  y.forEach((v, i) => {
    if (v !== 0 && v !== 1)
      throw new RangeError(`logisticRegression: y[${i}] must be 0 or 1, got ${String(v)}`);
  });
  if (n <= p) throw new RangeError(`logisticRegression: needs more rows (${n}) than coefficients (${p})`);

  const beta = new Array<number>(p).fill(0);
  const information = (b: readonly number[]) => {
    const H = Array.from({ length: p }, () => new Array<number>(p).fill(0));
    const g = new Array<number>(p).fill(0);
    let ll = 0;
    for (let i = 0; i < n; i++) {
      const row = A[i]!;
      let eta = 0;
      for (let j = 0; j < p; j++) eta += row[j]! * b[j]!;
      const mu = sigmoid(eta);
      const w = mu * (1 - mu);
      const r = y[i]! - mu;
      ll += y[i]! * eta - log1pExp(eta);
      for (let j = 0; j < p; j++) {
        g[j]! += row[j]! * r;
        for (let k = 0; k <= j; k++) H[j]![k]! += w * row[j]! * row[k]!;
      }
    }
    for (let j = 0; j < p; j++) for (let k = 0; k < j; k++) H[k]![j] = H[j]![k]!;
    return { H, g, ll };
  };

  let iterations = 0;
  let converged = false;
  while (iterations < maxIter) {
    iterations++;
    const { H, g } = information(beta);
    let factor: number[][];
    try {
      factor = cholesky(H, "logisticRegression (Xᵀ W X)");
    } catch (e) {
      // At β = 0 every weight is 1/4, so a singular matrix there means collinear columns;
      // later it means the weights collapsed as fitted probabilities hit 0 and 1.
      if (iterations === 1) throw e;
      throw new RangeError(
        "logisticRegression: perfect separation (fitted probabilities reach 0 and 1), the MLE does not exist",
      );
    }
    const step = choleskySolve(factor, g);
    let maxStep = 0;
    for (let j = 0; j < p; j++) {
      beta[j]! += step[j]!;
      maxStep = Math.max(maxStep, Math.abs(step[j]!));
    }
    if (!beta.every(Number.isFinite)) break;
    if (maxStep <= tol) {
      converged = true;
      break;
    }
  }
  if (!converged) {
    throw new RangeError(
      `logisticRegression: did not converge in ${maxIter} iterations; the classes are probably (quasi-)separable, so the MLE does not exist`,
    );
  }
  const { H, ll } = information(beta);
  // Perfect prediction: every fitted probability at its label; statsmodels flags this too.
  let maxResid = 0;
  for (let i = 0; i < n; i++) {
    let eta = 0;
    for (let j = 0; j < p; j++) eta += A[i]![j]! * beta[j]!;
    maxResid = Math.max(maxResid, Math.abs(y[i]! - sigmoid(eta)));
  }
  if (maxResid < 1e-8) throw new RangeError("logisticRegression: perfect separation, the MLE does not exist");
  const cov = choleskyInverse(cholesky(H, "logisticRegression (information at the estimate)"));
  const se = cov.map((row, j) => Math.sqrt(row[j]!));
  const z = beta.map((b, j) => b / se[j]!);
  return {
    coef: [...beta],
    se,
    z,
    p: z.map((v) => 2 * normalSf(Math.abs(v))),
    cov,
    logLikelihood: ll,
    iterations,
    intercept,
  };
}
