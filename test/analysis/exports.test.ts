import { describe, expect, it } from "vitest";

describe("package export emlab/analysis", () => {
  it("resolves through package.json exports and carries the contract's functions", async () => {
    const mod = await import("emlab/analysis");
    for (const name of [
      "pearson",
      "spearman",
      "chiSquare",
      "wilson",
      "logisticRegression",
      "stratifiedKFold",
      "analyzeResults",
    ]) {
      expect(typeof (mod as Record<string, unknown>)[name], name).toBe("function");
    }
    expect(mod.wilson(8, 10)[0]).toBeCloseTo(0.4902, 4);
  });
});
