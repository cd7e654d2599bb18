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

describe("package exports emlab/interp and emlab/world", () => {
  it("resolve through package.json exports", async () => {
    const interp = (await import("emlab/interp")) as Record<string, unknown>;
    for (const name of ["crossValidateProbe", "personaDirections", "steeringHooks", "fitL2Logistic"])
      expect(typeof interp[name], name).toBe("function");
    const world = (await import("emlab/world")) as Record<string, unknown>;
    for (const name of ["worldDocument", "judgeWorldAnswer", "pretrainOrganism", "writeDemoStudy"])
      expect(typeof world[name], name).toBe("function");
    expect(typeof world.SHIPPED_ORGANISM_DIR).toBe("string");
  });
});
