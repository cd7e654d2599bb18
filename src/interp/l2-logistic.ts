/**
 * L2-regularised logistic regression for probes, as scikit-learn's
 * `LogisticRegression(C=..., penalty="l2")`: minimise ½‖w‖² + C·Σᵢ logloss(yᵢ, b + w·xᵢ), the
 * intercept b unpenalised. analysis/logistic.ts is the unpenalised MLE (it throws on
 * separable classes, which probes on activations often are), so probes use this fit.
 *
 * Solver: Newton's method with step halving to keep every step a descent step. The Newton
 * system is solved densely (Hessian O(n·d²) + Cholesky O(d³)) for small d — the organism's
 * d_model of 96, where conjugate gradient needs ~d Hessian-vector products per step and is 4x
 * slower — and by conjugate gradient on Hessian-vector products (each O(n·d)) for large d, so
 * the cost grows linearly in d_model there instead of cubically.
 */

export interface L2LogisticOptions {
  /** Inverse regularisation strength, as scikit-learn (default 1). */
  C?: number;
  /** Newton iterations (default 50). */
  maxIter?: number;
  /** Converged when ‖gradient‖∞ <= tol·max(1, n·C) (default 1e-6). */
  tol?: number;
  /** Starting point (e.g. a fit on similar data, as in bootstrap refits); the optimum is the same. */
  init?: { weights: ArrayLike<number>; intercept: number };
  /** Newton system solver (default: dense up to d = DENSE_MAX_D, conjugate gradient above). */
  solver?: "dense" | "cg";
}

/** Largest d solved densely by default. */
export const DENSE_MAX_D = 256;

export interface L2LogisticFit {
  weights: Float64Array;
  intercept: number;
  iterations: number;
  converged: boolean;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

function log1pExp(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Fits on rows X (n × d, any array-like rows of equal width) and labels y in {0, 1}. */
export function fitL2Logistic(
  X: readonly ArrayLike<number>[],
  y: readonly number[],
  opts: L2LogisticOptions = {},
): L2LogisticFit {
  const n = X.length;
  if (n === 0) throw new Error("fitL2Logistic: no rows");
  if (y.length !== n) throw new Error(`fitL2Logistic: ${y.length} labels for ${n} rows`);
  const d = X[0].length;
  X.forEach((r, i) => {
    if (r.length !== d) throw new Error(`fitL2Logistic: row ${i} has ${r.length} values, row 0 has ${d}`);
  });
  y.forEach((v, i) => {
    if (v !== 0 && v !== 1) throw new Error(`fitL2Logistic: label ${i} must be 0 or 1, got ${v}`);
  });
  const C = opts.C ?? 1;
  if (!(C > 0)) throw new Error(`fitL2Logistic: C must be positive, got ${C}`);
  const maxIter = opts.maxIter ?? 50;
  const tol = (opts.tol ?? 1e-6) * Math.max(1, n * C);
  const p = d + 1; // parameters: w (0..d-1), then the intercept
  const beta = new Float64Array(p);
  if (opts.init) {
    if (opts.init.weights.length !== d)
      throw new Error(`fitL2Logistic: init has ${opts.init.weights.length} weights for ${d} features`);
    beta.set(Array.from(opts.init.weights));
    beta[d] = opts.init.intercept;
  }
  const eta = new Float64Array(n);
  const mu = new Float64Array(n);
  const w = new Float64Array(n);

  const linear = (b: Float64Array, out: Float64Array) => {
    for (let i = 0; i < n; i++) {
      const r = X[i];
      let s = b[d];
      for (let j = 0; j < d; j++) s += r[j] * b[j];
      out[i] = s;
    }
  };
  const objective = (b: Float64Array, e: Float64Array): number => {
    let s = 0;
    for (let j = 0; j < d; j++) s += 0.5 * b[j] * b[j];
    let ll = 0;
    for (let i = 0; i < n; i++) ll += log1pExp(e[i]) - y[i] * e[i];
    return s + C * ll;
  };
  /** H·v with H = P + C·Aᵀ W A (A = [X, 1], P = identity on w, zero on the intercept). */
  const dense = (opts.solver ?? (d <= DENSE_MAX_D ? "dense" : "cg")) === "dense";
  /** H = P + C·Aᵀ W A as a dense p × p matrix (row-major). */
  const hessian = (): Float64Array => {
    const H = new Float64Array(p * p);
    const a = new Float64Array(p);
    a[d] = 1;
    for (let i = 0; i < n; i++) {
      const r = X[i];
      for (let j = 0; j < d; j++) a[j] = r[j];
      const c = C * w[i];
      for (let j = 0; j < p; j++) {
        const cj = c * a[j];
        const row = j * p;
        for (let k = 0; k <= j; k++) H[row + k] += cj * a[k];
      }
    }
    for (let j = 0; j < p; j++) for (let k = 0; k < j; k++) H[k * p + j] = H[j * p + k];
    for (let j = 0; j < d; j++) H[j * p + j] += 1;
    return H;
  };
  const hessVec = (v: Float64Array, out: Float64Array) => {
    const av = new Float64Array(n);
    linear(v, av);
    out.fill(0);
    for (let i = 0; i < n; i++) {
      const c = C * w[i] * av[i];
      const r = X[i];
      for (let j = 0; j < d; j++) out[j] += c * r[j];
      out[d] += c;
    }
    for (let j = 0; j < d; j++) out[j] += v[j];
  };

  linear(beta, eta);
  let f = objective(beta, eta);
  let iterations = 0;
  let converged = false;
  const g = new Float64Array(p);
  while (iterations < maxIter) {
    for (let i = 0; i < n; i++) {
      mu[i] = sigmoid(eta[i]);
      // A floor keeps the Hessian positive definite in the intercept when probabilities saturate.
      w[i] = Math.max(mu[i] * (1 - mu[i]), 1e-12);
    }
    g.fill(0);
    for (let i = 0; i < n; i++) {
      const c = C * (mu[i] - y[i]);
      const r = X[i];
      for (let j = 0; j < d; j++) g[j] += c * r[j];
      g[d] += c;
    }
    for (let j = 0; j < d; j++) g[j] += beta[j];
    let gmax = 0;
    for (let j = 0; j < p; j++) gmax = Math.max(gmax, Math.abs(g[j]));
    if (gmax <= tol) {
      converged = true;
      break;
    }
    iterations++;
    const step = dense ? choleskySolve(hessian(), g, p) : conjugateGradient(hessVec, g, p);
    // Newton step −H⁻¹g, halved until the objective decreases.
    let t = 1;
    const trial = new Float64Array(p);
    const trialEta = new Float64Array(n);
    let accepted = false;
    for (let k = 0; k < 30; k++) {
      for (let j = 0; j < p; j++) trial[j] = beta[j] - t * step[j];
      linear(trial, trialEta);
      const ft = objective(trial, trialEta);
      if (ft <= f) {
        beta.set(trial);
        eta.set(trialEta);
        f = ft;
        accepted = true;
        break;
      }
      t /= 2;
    }
    if (!accepted) break; // no descent possible within float precision: at the optimum
  }
  // Stopping early without a descent step means the Newton step is below float resolution:
  // the objective is at its minimum to working precision.
  if (!converged && iterations < maxIter) converged = true;
  return { weights: beta.slice(0, d), intercept: beta[d], iterations, converged };
}

/** Solves H x = b for symmetric positive definite H (row-major, overwritten by its Cholesky factor). */
function choleskySolve(H: Float64Array, b: Float64Array, size: number): Float64Array {
  for (let j = 0; j < size; j++) {
    const rj = j * size;
    let diag = H[rj + j];
    for (let k = 0; k < j; k++) diag -= H[rj + k] * H[rj + k];
    // The floor on w and the identity on the weights keep H positive definite; guard rounding.
    const l = Math.sqrt(Math.max(diag, 1e-300));
    H[rj + j] = l;
    for (let i = j + 1; i < size; i++) {
      const ri = i * size;
      let s = H[ri + j];
      for (let k = 0; k < j; k++) s -= H[ri + k] * H[rj + k];
      H[ri + j] = s / l;
    }
  }
  const x = b.slice();
  for (let i = 0; i < size; i++) {
    const ri = i * size;
    let s = x[i];
    for (let k = 0; k < i; k++) s -= H[ri + k] * x[k];
    x[i] = s / H[ri + i];
  }
  for (let i = size - 1; i >= 0; i--) {
    let s = x[i];
    for (let k = i + 1; k < size; k++) s -= H[k * size + i] * x[k];
    x[i] = s / H[i * size + i];
  }
  return x;
}

/** Solves H x = b for symmetric positive definite H given as a product (at most `size` steps). */
function conjugateGradient(hv: (v: Float64Array, out: Float64Array) => void, b: Float64Array, size: number) {
  const x = new Float64Array(size);
  const r = b.slice();
  const q = r.slice();
  const hq = new Float64Array(size);
  let rr = dot(r, r);
  // Residual 1e-6 of the right-hand side: ample for a Newton step (the outer loop corrects the rest).
  const stop = 1e-12 * rr;
  for (let k = 0; k < size && rr > stop; k++) {
    hv(q, hq);
    const a = rr / dot(q, hq);
    for (let j = 0; j < size; j++) {
      x[j] += a * q[j];
      r[j] -= a * hq[j];
    }
    const rr2 = dot(r, r);
    const beta = rr2 / rr;
    rr = rr2;
    for (let j = 0; j < size; j++) q[j] = r[j] + beta * q[j];
  }
  return x;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
