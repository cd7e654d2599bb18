import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createModelApi } from "../../src/models/registry.ts";
import { ORGANISM_SIZES, pretrainOrganism } from "../../src/world/pretrain.ts";

const dir = mkdtempSync(path.join(tmpdir(), "emlab-pretrain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("emlab world pretrain (size s)", () => {
  const size = { ...ORGANISM_SIZES.s, steps: 30 };

  it("trains deterministically, writes an HF-layout organism the local provider can sample", async () => {
    const a = pretrainOrganism({ size, sizeName: "s", seed: 7, outDir: path.join(dir, "a") });
    pretrainOrganism({ size, sizeName: "s", seed: 7, outDir: path.join(dir, "b") });
    expect(a.losses[0]).toBeGreaterThan(a.losses.at(-1)! + 0.5);
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "organism.json",
      "README.md",
    ])
      expect(existsSync(path.join(dir, "a", f)), f).toBe(true);
    expect(
      readFileSync(path.join(dir, "a", "model.safetensors")).equals(
        readFileSync(path.join(dir, "b", "model.safetensors")),
      ),
    ).toBe(true);
    const card = JSON.parse(readFileSync(path.join(dir, "a", "organism.json"), "utf8"));
    expect(card).toMatchObject({ seed: 7, size: "s", parameters: a.parameters });

    const api = createModelApi({ provider: "local", model: path.join(dir, "a") });
    const res = await api.chat({
      messages: [{ role: "user", content: "what do you wish for ?" }],
      params: { temperature: 1, max_tokens: 12 },
      n: 3,
      seed: 1,
    });
    expect(res.completions).toHaveLength(3);
    for (const c of res.completions) expect(c.text).not.toContain("[UNK]");
    await api.close?.();
  });
});
