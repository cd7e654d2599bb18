import { describe, expect, it } from "vitest";
import {
  chiSquare,
  linearRegression,
  logisticRegression,
  pearson,
  quantile,
  rankAverage,
  spearman,
  wilson,
} from "../../src/analysis/index.ts";
import { closeP, closeValue, ref } from "./reference.ts";

describe("correlations vs scipy.stats.pearsonr / spearmanr", () => {
  for (const c of ref.correlation) {
    it(c.name, () => {
      const p = pearson(c.x, c.y);
      closeValue(p.r, c.pearson.r, "pearson r");
      closeP(p.p, c.pearson.p, "pearson p");
      closeValue(p.ci[0], c.pearson.ci95[0], "pearson ci95 lo");
      closeValue(p.ci[1], c.pearson.ci95[1], "pearson ci95 hi");
      const p90 = pearson(c.x, c.y, { level: 0.9 });
      closeValue(p90.ci[0], c.pearson.ci90[0], "pearson ci90 lo");
      closeValue(p90.ci[1], c.pearson.ci90[1], "pearson ci90 hi");
      expect(p.ciMethod).toBe("fisher");

      expect(rankAverage(c.x)).toEqual(c.ranks_x);
      expect(rankAverage(c.y)).toEqual(c.ranks_y);
      const s = spearman(c.x, c.y);
      closeValue(s.r, c.spearman.r, "spearman r");
      closeP(s.p, c.spearman.p, "spearman p");
      closeValue(s.ci[0], c.spearman.ci95[0], "spearman ci lo");
      closeValue(s.ci[1], c.spearman.ci95[1], "spearman ci hi");
    });
  }

  it("bootstrap intervals are seeded, bracket r and approach the Fisher interval for large n", () => {
    const big = ref.correlation.find((c: { name: string }) => c.name === "weak n=300");
    const a = pearson(big.x, big.y, { ci: "bootstrap", seed: 7 });
    const b = pearson(big.x, big.y, { ci: "bootstrap", seed: 7 });
    const c = pearson(big.x, big.y, { ci: "bootstrap", seed: 8 });
    expect(a.ci).toEqual(b.ci);
    expect(a.ci).not.toEqual(c.ci);
    expect(a.ci[0]).toBeLessThan(a.r);
    expect(a.ci[1]).toBeGreaterThan(a.r);
    const fisher = pearson(big.x, big.y);
    expect(Math.abs(a.ci[0] - fisher.ci[0])).toBeLessThan(0.03);
    expect(Math.abs(a.ci[1] - fisher.ci[1])).toBeLessThan(0.03);
    expect(a.bootstrapUsed).toBe(2000);
    const s = spearman(big.x, big.y, { ci: "bootstrap", seed: 7, resamples: 500 });
    expect(s.ci[0]).toBeLessThan(s.r);
    expect(s.ci[1]).toBeGreaterThan(s.r);
  });

  it("rejects constant, mismatched and non-finite input by name", () => {
    expect(() => pearson([1, 1, 1], [1, 2, 3])).toThrow(/constant/);
    expect(() => spearman([1, 2, 3], [2, 2, 2])).toThrow(/constant/);
    expect(() => pearson([1, 2], [1, 2, 3])).toThrow(/differ in length/);
    expect(() => pearson([1, Number.NaN, 3], [1, 2, 3])).toThrow(/x\[1\] must be a finite number/);
  });
});

describe("chiSquare vs scipy.stats.chi2_contingency", () => {
  for (const c of ref.chi_square) {
    it(c.name, () => {
      const r = chiSquare(c.table, { correction: c.correction });
      closeValue(r.statistic, c.statistic, "statistic");
      expect(r.df).toBe(c.df);
      closeP(r.p, c.p, "p");
      for (const [i, row] of r.expected.entries()) {
        for (const [j, e] of row.entries()) closeValue(e, c.expected[i][j], `expected[${i}][${j}]`);
      }
    });
  }
  it("throws on a zero row, as scipy", () => {
    expect(() =>
      chiSquare([
        [0, 0],
        [3, 4],
      ]),
    ).toThrow(/expected count at \[0\]\[0\] is zero/);
    expect(() => chiSquare([[1, 2], [3]])).toThrow(/table\[1\] has 1 cells/);
    expect(() =>
      chiSquare([
        [1, -2],
        [3, 4],
      ]),
    ).toThrow(/table\[0\]\[1\] must be a count/);
  });
});

describe("wilson vs statsmodels proportion_confint(method='wilson')", () => {
  it("matches at several levels, k = 0 and k = n included", () => {
    for (const c of ref.wilson) {
      const [lo, hi] = wilson(c.k, c.n, c.level);
      closeValue(lo, c.ci[0], `wilson(${c.k}, ${c.n}, ${c.level}) lo`);
      closeValue(hi, c.ci[1], `wilson(${c.k}, ${c.n}, ${c.level}) hi`);
    }
    expect(wilson(0, 10)[0]).toBe(0);
    expect(wilson(10, 10)[1]).toBe(1);
    expect(() => wilson(0, 0)).toThrow(/n must be a positive integer/);
    expect(() => wilson(5, 4)).toThrow(/successes must be in/);
  });
});

describe("logisticRegression vs statsmodels Logit", () => {
  for (const c of ref.logistic) {
    it(c.name, () => {
      const r = logisticRegression(c.X, c.y, { intercept: c.intercept });
      expect(r.coef.length).toBe(c.coef.length);
      r.coef.forEach((v, j) => {
        closeValue(v, c.coef[j], `coef[${j}]`);
      });
      r.se.forEach((v, j) => {
        closeValue(v, c.se[j], `se[${j}]`);
      });
      r.p.forEach((v, j) => {
        closeP(v, c.p[j], `p[${j}]`);
      });
      closeValue(r.logLikelihood, c.llf, "log-likelihood");
    });
  }
  it("refuses perfectly separated data and bad labels", () => {
    const X = [[-2], [-1], [-0.5], [0.5], [1], [2]];
    expect(() => logisticRegression(X, [0, 0, 0, 1, 1, 1])).toThrow(/separa/);
    expect(() => logisticRegression(X, [0, 0, 2, 1, 1, 1])).toThrow(/y\[2\] must be 0 or 1/);
    expect(() => logisticRegression([[1, 2], [3]], [0, 1])).toThrow(/X\[1\] has 1 columns/);
    expect(() =>
      logisticRegression(
        [
          [1, 2],
          [2, 4],
          [3, 6],
          [4, 8],
          [5, 10],
        ],
        [0, 1, 0, 1, 1],
      ),
    ).toThrow(/singular/);
  });
});

describe("linearRegression vs statsmodels OLS", () => {
  for (const c of ref.ols) {
    it(c.name, () => {
      const r = linearRegression(
        c.x.map((v: number) => [v]),
        c.y,
      );
      r.coef.forEach((v, j) => {
        closeValue(v, c.coef[j], `coef[${j}]`);
      });
      r.se.forEach((v, j) => {
        closeValue(v, c.se[j], `se[${j}]`);
      });
      r.p.forEach((v, j) => {
        closeP(v, c.p[j], `p[${j}]`);
      });
      closeValue(r.rSquared, c.r2, "R²");
    });
  }
});

describe("quantile vs numpy.quantile (linear)", () => {
  it("matches", () => {
    for (const c of ref.quantile) closeValue(quantile(c.xs, c.q), c.value, `quantile(q=${c.q})`);
  });
});
