/** Small dense linear algebra for the regressions (p×p systems, p = a few columns). */

/**
 * Cholesky factor L (lower) of a symmetric positive-definite matrix; throws with `what`
 * when the matrix is not positive definite (collinear or constant columns).
 */
export function cholesky(a: readonly (readonly number[])[], what: string): number[][] {
  const n = a.length;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    let d = a[j]![j]!;
    for (let k = 0; k < j; k++) d -= l[j]![k]! * l[j]![k]!;
    // Relative tolerance: a pivot this small means a column is a combination of others.
    if (!(d > 1e-13 * Math.max(1, Math.abs(a[j]![j]!)))) {
      throw new RangeError(`${what}: matrix is singular (column ${j} is constant or collinear with others)`);
    }
    const ljj = Math.sqrt(d);
    l[j]![j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = s / ljj;
    }
  }
  return l;
}

/** Solve (L Lᵀ) x = b. */
export function choleskySolve(l: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = l.length;
  const y = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i]![k]! * y[k]!;
    y[i] = s / l[i]![i]!;
  }
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k]![i]! * x[k]!;
    x[i] = s / l[i]![i]!;
  }
  return x;
}

/** Inverse of (L Lᵀ), column by column. */
export function choleskyInverse(l: readonly (readonly number[])[]): number[][] {
  const n = l.length;
  const cols = Array.from({ length: n }, (_, j) =>
    choleskySolve(
      l,
      Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)),
    ),
  );
  return Array.from({ length: n }, (_, i) => cols.map((c) => c[i]!));
}

/** Checks a design matrix and returns it with a leading column of ones when asked. */
export function designMatrix(
  X: readonly (readonly number[])[],
  intercept: boolean,
  what: string,
): number[][] {
  if (!Array.isArray(X) || X.length === 0)
    throw new RangeError(`${what}: X must be a non-empty array of rows`);
  const p = X[0]!.length;
  return X.map((row, i) => {
    if (!Array.isArray(row) || row.length !== p) {
      throw new RangeError(
        `${what}: X[${i}] has ${Array.isArray(row) ? row.length : "no"} columns, expected ${p}`,
      );
    }
    row.forEach((v, j) => {
      if (typeof v !== "number" || !Number.isFinite(v))
        throw new RangeError(`${what}: X[${i}][${j}] must be a finite number, got ${String(v)}`);
    });
    return intercept ? [1, ...row] : [...row];
  });
}
