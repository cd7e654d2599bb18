import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { planGenerate } from "../../src/battery/generate.ts";
import { loadStudy } from "../../src/config/load.ts";

const dir = path.join(import.meta.dirname, "../../examples");

describe("examples", () => {
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    it(`${name} is a valid study whose prompts load`, () => {
      const { study, file } = loadStudy(path.join(dir, name));
      // A generation example's prompts load from the repository; the others (run in a demo's
      // directory, like the dose-response one) name files the demo writes.
      if (study.battery?.generate) expect(planGenerate(study, path.dirname(file)).length).toBeGreaterThan(0);
      else expect(study.battery?.harmfulness ?? study.interp).toBeDefined();
    });
  }
});
