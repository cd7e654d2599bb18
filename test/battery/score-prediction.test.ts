// Score prediction's rank reading: Spearman's rho between a model's predicted scores of its own
// outputs and the judge's, against scipy.stats.spearmanr (values computed there once).
import { describe, expect, it } from "vitest";
import { rankAgreement } from "../../src/battery/score-prediction.ts";

const pairs = (predicted: number[], actual: number[]) =>
  predicted.map((p, i) => ({ predicted: p, actual: actual[i] }));

describe("score prediction: rank agreement", () => {
  it("is scipy's spearmanr with ties (rho, two-sided p) and a Fisher interval with variance 1.06/(n-3)", () => {
    const r = rankAgreement(pairs([1, 5, 3, 2, 4, 1], [1, 4, 5, 2, 5, 2]))!;
    expect(r.n).toBe(6);
    expect(r.rho).toBeCloseTo(0.7612788283838284, 12);
    expect(r.p).toBeCloseTo(0.0786795997400258, 9);
    expect(r.ci[0]).toBeCloseTo(-0.16428676798729433, 6);
    expect(r.ci[1]).toBeCloseTo(0.9739706304851666, 6);
  });

  it("is null with fewer than 4 predictions or a constant side", () => {
    expect(rankAgreement(pairs([1, 2, 3], [1, 2, 3]))).toBeNull();
    expect(rankAgreement(pairs([3, 3, 3, 3], [1, 2, 3, 4]))).toBeNull();
    expect(rankAgreement(pairs([1, 2, 3, 4], [5, 5, 5, 5]))).toBeNull();
  });
});
