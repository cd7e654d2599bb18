// modelIdentity's fingerprint of a local model directory: its regular files (config, weights,
// generation_config.json with its eos ids) change it; a subdirectory (an SAE trained on the
// model, models/organism/sae/) does not.
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ModelEntrySchema } from "../../src/config/schema.ts";
import { modelIdentity } from "../../src/study/targets.ts";

describe("modelIdentity fingerprint", () => {
  it("follows the directory's regular files, not its subdirectories", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "emlab-identity-"));
    writeFileSync(path.join(dir, "config.json"), "{}");
    const m = ModelEntrySchema.parse({ id: "m", provider: "local", model: dir });
    const weights = () => modelIdentity(m).weights;
    const first = weights();
    expect(first).toBeDefined();
    mkdirSync(path.join(dir, "sae"));
    writeFileSync(path.join(dir, "sae", "cfg.json"), "{}");
    expect(weights()).toBe(first);
    const gen = path.join(dir, "generation_config.json");
    writeFileSync(gen, '{"eos_token_id": [1]}');
    const withGen = weights();
    expect(withGen).not.toBe(first);
    writeFileSync(gen, '{"eos_token_id": [1, 2]}');
    utimesSync(gen, new Date(1000), new Date(1000));
    expect(weights()).not.toBe(withGen);
  });
});
