import { describe, expect, it } from "vitest";
import { wilson } from "../../src/analysis/intervals.ts";
import { logisticRegression } from "../../src/analysis/logistic.ts";
import { Rng } from "../../src/engine/rng.ts";
import {
  cosine,
  crossValidateProbe,
  fitL2Logistic,
  fitProbe,
  ProbeCvSchema,
  probeCosine,
  probeTransferMatrix,
  rocAuc,
  TransferMatrixSchema,
} from "../../src/interp/index.ts";

/** n rows of d Gaussian features (feature j scaled by j+1 and shifted, so standardising matters). */
function gaussianRows(n: number, d: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: d }, (_, j) => rng.normal() * (j + 1) + 3),
  );
}

/** Labels by the side of a hyperplane through the data's centre: linearly separable. */
function separable(rows: Float32Array[], w: number[]): number[] {
  return rows.map((r) => (r.reduce((s, x, j) => s + (x - 3) * w[j], 0) > 0 ? 1 : 0));
}

/** Separable with a margin: each row pushed 2 units along ±w according to its side. */
function withMargin(rows: Float32Array[], w: number[]): { rows: Float32Array[]; labels: number[] } {
  const labels = separable(rows, w);
  const n = Math.hypot(...w);
  return { rows: rows.map((r, i) => r.map((x, j) => x + ((labels[i] ? 2 : -2) * w[j]) / n)), labels };
}

describe("rocAuc", () => {
  it("matches scikit-learn's roc_auc_score on its docs example and handles ties", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([1, 1, 1, 1], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([1, 2], [1, 1])).toBeNaN();
  });
});

describe("fitL2Logistic", () => {
  it("approaches the unpenalised MLE (analysis/logistic.ts) as C grows", () => {
    const rows = gaussianRows(300, 3, 1);
    const rng = new Rng(2);
    // Noisy labels: the MLE exists.
    const y = rows.map((r) =>
      rng.next() < 1 / (1 + Math.exp(-(0.8 * (r[0] - 3) - 0.3 * (r[2] - 3)))) ? 1 : 0,
    );
    const mle = logisticRegression(
      rows.map((r) => Array.from(r)),
      y,
    );
    const fit = fitL2Logistic(rows, y, { C: 1e9 });
    expect(fit.converged).toBe(true);
    expect(fit.intercept).toBeCloseTo(mle.coef[0], 4);
    for (let j = 0; j < 3; j++) expect(fit.weights[j]).toBeCloseTo(mle.coef[j + 1], 4);
    // A strong penalty shrinks the weights towards 0.
    const shrunk = fitL2Logistic(rows, y, { C: 1e-3 });
    expect(Math.abs(shrunk.weights[0])).toBeLessThan(Math.abs(fit.weights[0]) / 2);
  });

  it("stays finite on separable classes (where the MLE does not exist)", () => {
    const rows = gaussianRows(60, 4, 3);
    const y = separable(rows, [1, 0, 0, 0]);
    expect(() =>
      logisticRegression(
        rows.map((r) => Array.from(r)),
        y,
      ),
    ).toThrow();
    const fit = fitL2Logistic(rows, y);
    expect(fit.converged).toBe(true);
    expect([...fit.weights].every(Number.isFinite)).toBe(true);
  });
});

describe("fitL2Logistic solvers and warm starts", () => {
  // Noisy labels: a unique, finite optimum every solver must reach.
  const rows = gaussianRows(150, 12, 9);
  const rng = new Rng(4);
  const y = rows.map((r) => (r[0] / 1 - r[3] / 4 + rng.normal() > 0 ? 1 : 0));

  it("dense Newton and conjugate-gradient Newton reach the same optimum", () => {
    const dense = fitL2Logistic(rows, y, { solver: "dense", tol: 1e-10 });
    const cg = fitL2Logistic(rows, y, { solver: "cg", tol: 1e-10 });
    expect(dense.converged && cg.converged).toBe(true);
    expect(dense.intercept).toBeCloseTo(cg.intercept, 7);
    for (const [j, w] of dense.weights.entries()) expect(w).toBeCloseTo(cg.weights[j], 7);
  });

  it("a warm start changes the iterations, not the fit", () => {
    const cold = fitL2Logistic(rows, y, { tol: 1e-10 });
    // Started from the fit on a bootstrap resample, as probeCosine's refits are.
    const idx = Array.from({ length: rows.length }, () => rng.int(rows.length));
    const resampled = fitL2Logistic(
      idx.map((i) => rows[i]),
      idx.map((i) => y[i]),
      { tol: 1e-10 },
    );
    const warm = fitL2Logistic(rows, y, { tol: 1e-10, init: resampled });
    expect(warm.iterations).toBeLessThan(cold.iterations);
    expect(warm.intercept).toBeCloseTo(cold.intercept, 7);
    for (const [j, w] of warm.weights.entries()) expect(w).toBeCloseTo(cold.weights[j], 7);
    // A warm probe from other data re-expressed in this fit's standardisation: same direction.
    const half = rows.slice(0, 75);
    const warmProbe = fitProbe(half, y.slice(0, 75));
    const a = fitProbe(rows, y);
    const b = fitProbe(rows, y, {}, warmProbe);
    expect(cosine(a.direction, b.direction)).toBeCloseTo(1, 9);
    expect(() => fitL2Logistic(rows, y, { init: { weights: [1], intercept: 0 } })).toThrow(
      /init has 1 weights/,
    );
  });
});

describe("probes", () => {
  const d = 8;
  const planted = [2, -1, 0, 0, 1, 0, 0, 0];
  const { rows, labels } = withMargin(gaussianRows(200, d, 5), planted);

  it("separates linearly separable data (CV accuracy and AUC ~1) and recovers the planted direction", () => {
    const cv = crossValidateProbe(rows, labels);
    expect(ProbeCvSchema.parse(cv)).toEqual(cv);
    expect(cv.folds).toBe(5);
    expect(cv.seed).toBe(42);
    expect(cv.accuracy).toBeGreaterThan(0.98);
    expect(cv.auc).toBeGreaterThan(0.99);
    expect(cv.accuracyCi[0]).toBeLessThan(cv.accuracy);
    expect(cv.accuracyCi[1]).toBeGreaterThanOrEqual(cv.accuracy);
    expect(cv.aucCi[0]).toBeLessThanOrEqual(cv.auc);
    const probe = fitProbe(rows, labels);
    // The direction lives in the original (unstandardised) space.
    expect(cosine(probe.direction, planted)).toBeGreaterThan(0.9);
    expect(Math.hypot(...probe.direction)).toBeCloseTo(1, 5);
  });

  it("is at chance on shuffled labels", () => {
    const shuffled = new Rng(9).shuffle([...labels]);
    const cv = crossValidateProbe(rows, shuffled);
    expect(Math.abs(cv.accuracy - 0.5)).toBeLessThan(0.12);
    expect(Math.abs(cv.auc - 0.5)).toBeLessThan(0.12);
    expect(cv.accuracyCi[0]).toBeLessThan(0.5 + 0.05);
  });

  it("is deterministic given the seed, and the seed matters", () => {
    const noisy = new Rng(4).shuffle([...labels.slice(0, 100)]).concat(labels.slice(100));
    const a = crossValidateProbe(rows, noisy, { seed: 7 });
    const b = crossValidateProbe(rows, noisy, { seed: 7 });
    const c = crossValidateProbe(rows, noisy, { seed: 8 });
    expect(b).toEqual(a);
    expect(c.foldAccuracy).not.toEqual(a.foldAccuracy);
  });

  it("refuses too few rows of a class for the folds, naming the counts", () => {
    expect(() => crossValidateProbe(rows.slice(0, 6), [1, 1, 1, 0, 0, 0])).toThrow(
      /at least 5 rows.*3 positive, 3 negative/,
    );
  });

  it("cosine between probes: 1 for the same task, near 0 for orthogonal tasks, with a bootstrap CI", () => {
    const same = probeCosine({ rows, labels }, { rows, labels }, { resamples: 30 });
    expect(same.paired).toBe(true);
    expect(same.cosine).toBeCloseTo(1, 6);
    const other = separable(rows, [0, 0, 0, 1, 0, 0, -1, 0]);
    const orth = probeCosine({ rows, labels }, { rows, labels: other }, { resamples: 30 });
    expect(Math.abs(orth.cosine)).toBeLessThan(0.2);
    expect(orth.ci[0]).toBeLessThan(orth.cosine);
    expect(orth.ci[1]).toBeGreaterThan(orth.cosine);
    expect(orth.used).toBe(30);
    const again = probeCosine({ rows, labels }, { rows, labels: other }, { resamples: 30 });
    expect(again).toEqual(orth);
  });

  it("transfer matrix: transfers between models sharing the direction, chance for one that does not", () => {
    const shifted = rows.map((r) => r.map((x, j) => x + (j === 5 ? 0.5 : 0)));
    const rows2 = gaussianRows(200, d, 6);
    const unrelated = separable(rows2, [0, 0, 1, 0, 0, 0, 0, 1]);
    const m = probeTransferMatrix(
      [
        { name: "a", rows, labels },
        { name: "b", rows: shifted, labels },
        { name: "c", rows: rows2, labels: unrelated },
      ],
      { layer: 3 },
    );
    expect(TransferMatrixSchema.parse(m)).toEqual(m);
    expect(m.accuracy[0][1]).toBeGreaterThan(0.9);
    expect(m.accuracy[1][0]).toBeGreaterThan(0.9);
    expect(m.auc[0][2]).toBeLessThan(0.75);
    expect(m.accuracy[2][2]).toBeGreaterThan(0.9);
    // Off the diagonal: the Wilson interval of the accuracy over the 200 tested rows.
    const k = Math.round(m.accuracy[0][2] * 200);
    expect(m.accuracyCi[0][2]).toEqual(wilson(k, 200));
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        expect(m.accuracyCi[i][j][0]).toBeLessThanOrEqual(m.accuracy[i][j]);
        expect(m.accuracyCi[i][j][1]).toBeGreaterThanOrEqual(m.accuracy[i][j]);
      }
  });
});
