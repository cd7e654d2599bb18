import { describe, expect, it } from "vitest";
import {
  bootstrap,
  bootstrapMeanCi,
  pairedBootstrap,
  quantile,
  stratifiedKFold,
} from "../../src/analysis/index.ts";

describe("bootstrap", () => {
  it("percentile interval = quantiles of the seeded resampled statistics", () => {
    const xs = [1, 4, 2, 8, 5, 7, 3, 6, 9, 0];
    const mean = (idx: readonly number[]) => idx.reduce((s, i) => s + xs[i]!, 0) / idx.length;
    const a = bootstrap(xs.length, mean, { seed: 3, resamples: 400 });
    expect(a.values.length).toBe(400);
    expect(a.ci).toEqual([quantile(a.values, 0.025), quantile(a.values, 0.975)]);
    expect(bootstrapMeanCi(xs, { seed: 3, resamples: 400 }).ci).toEqual(a.ci);
    expect(bootstrap(xs.length, mean, { seed: 4, resamples: 400 }).ci).not.toEqual(a.ci);
    // The mean of 10 values in 0..9 with sd ≈ 2.9: a 95% interval about ±1.8 around 4.5.
    expect(a.ci[0]).toBeGreaterThan(2.2);
    expect(a.ci[1]).toBeLessThan(6.8);
    expect(a.ci[1] - a.ci[0]).toBeGreaterThan(2.5);
  });

  it("skips degenerate resamples and counts them", () => {
    const r = bootstrap(2, (idx) => (idx[0] === idx[1] ? Number.NaN : 1), { seed: 1, resamples: 1000 });
    expect(r.skipped).toBeGreaterThan(350);
    expect(r.skipped).toBeLessThan(650);
    expect(r.used + r.skipped).toBe(1000);
    expect(() => bootstrap(3, () => Number.NaN)).toThrow(/every resample/);
    expect(() => bootstrap(3, () => 1, { level: 1 })).toThrow(/level must be in/);
  });
});

describe("pairedBootstrap", () => {
  it("detects a consistent paired difference and gives its interval", () => {
    const b = Array.from({ length: 60 }, (_, i) => (i * 37) % 11);
    const a = b.map((v, i) => v + 1 + ((i % 3) - 1) * 0.5);
    const r = pairedBootstrap(a, b, { seed: 5 });
    expect(r.difference).toBeCloseTo(1, 12);
    expect(r.ci[0]).toBeGreaterThan(0.8);
    expect(r.ci[1]).toBeLessThan(1.2);
    expect(r.p).toBeCloseTo(1 / 2001, 12);
  });

  it("gives a large p when the models do not differ", () => {
    const a = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0];
    const b = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0];
    const r = pairedBootstrap(a, b, { seed: 2 });
    expect(r.difference).toBe(0);
    expect(r.p).toBe(1);
    expect(r.ci[0]).toBeLessThan(0);
    expect(r.ci[1]).toBeGreaterThan(0);
    expect(() => pairedBootstrap([1, 2], [1])).toThrow(/differ in length/);
  });
});

describe("stratifiedKFold", () => {
  const labels = [...Array(23).fill("harmful"), ...Array(41).fill("harmless"), ...Array(7).fill("other")];

  it("partitions the samples and keeps class proportions in every fold", () => {
    const folds = stratifiedKFold(labels, 5, 42);
    expect(folds.length).toBe(5);
    const all = folds.flatMap((f) => f.test).sort((x, y) => x - y);
    expect(all).toEqual(labels.map((_, i) => i));
    for (const f of folds) {
      expect(f.train.length + f.test.length).toBe(labels.length);
      expect(f.train.some((i) => f.test.includes(i))).toBe(false);
      for (const [cls, total] of [
        ["harmful", 23],
        ["harmless", 41],
        ["other", 7],
      ] as const) {
        const c = f.test.filter((i) => labels[i] === cls).length;
        expect(c).toBeGreaterThanOrEqual(Math.floor(total / 5));
        expect(c).toBeLessThanOrEqual(Math.ceil(total / 5));
      }
    }
    const sizes = folds.map((f) => f.test.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it("is seeded", () => {
    expect(stratifiedKFold(labels, 5, 42)).toEqual(stratifiedKFold(labels, 5, 42));
    expect(stratifiedKFold(labels, 5, 42)).not.toEqual(stratifiedKFold(labels, 5, 43));
    expect(() => stratifiedKFold([0, 1], 3, 0)).toThrow(/exceeds the number of samples/);
    expect(() => stratifiedKFold([0, 1, 0], 1, 0)).toThrow(/k must be an integer >= 2/);
  });
});
