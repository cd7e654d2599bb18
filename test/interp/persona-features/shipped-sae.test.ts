import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadSaeLens, saeMetrics } from "../../../src/engine/sae/index.ts";
import { readCorpusRows } from "../../../src/interp/persona-features/train.ts";
import { loadLocalEngine } from "../../../src/models/local.ts";
import { SHIPPED_ORGANISM_DIR } from "../../../src/world/organism.ts";

const DIR = path.join(SHIPPED_ORGANISM_DIR, "sae");

describe("the organism's shipped SAE (models/organism/sae)", () => {
  it("loads, reads the organism's block 1, and reconstructs held-out world tokens (explained variance > 90 %)", async () => {
    const sae = loadSaeLens(DIR);
    expect(sae.cfg).toMatchObject({
      architecture: "topk",
      dIn: 96,
      dSae: 768,
      k: 16,
      hookName: "blocks.1.hook_resid_post",
      hookLayer: 1,
    });
    const engine = loadLocalEngine(SHIPPED_ORGANISM_DIR);
    // Documents past those it was trained on (2000-5999) and past the organism's pretraining (0-63999).
    const { rows, n } = await readCorpusRows(engine, sae.cfg.hookName, {
      kind: "world",
      seed: 1,
      start: 2_000_000,
      documents: 24,
    });
    const m = saeMetrics(sae, rows, n);
    expect(m.l0).toBe(16);
    expect(m.explainedVariance).toBeGreaterThan(0.9);
  });

  it("its README names the command train-log.json recorded", () => {
    const log = JSON.parse(readFileSync(path.join(DIR, "train-log.json"), "utf8"));
    const readme = readFileSync(path.join(DIR, "README.md"), "utf8");
    expect(readme).toContain(log.command);
  });
});
