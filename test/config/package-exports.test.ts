import { describe, expect, it } from "vitest";

describe("package export emlab", () => {
  it("resolves the main entry through package.json exports", async () => {
    const mod = await import("emlab");
    for (const name of ["loadStudy", "runStudy", "createModelApi", "RunStore"])
      expect(typeof (mod as Record<string, unknown>)[name], name).toBe("function");
    expect(typeof mod.engine.generate).toBe("function");
  });
});
