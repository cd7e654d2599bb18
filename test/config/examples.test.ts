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
      expect(planGenerate(study, path.dirname(file)).length).toBeGreaterThan(0);
    });
  }
});
