// `emlab vectors export-sae`: SAELens latents' unit decoder rows as a control vector at the
// SAE's block, steering the engine as latentSteerHook does; refused for SAEs that cannot
// give one (block 0, a hook other than a block's output) and for bad latents.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { registerVectorsCommand } from "../../src/cli/vectors.ts";
import { noGrad } from "../../src/engine/autograd.ts";
import { mergeHooks } from "../../src/engine/hooks.ts";
import { readControlVector } from "../../src/engine/io/control-vector.ts";
import { saeLatentDirections, unitDecoderDirection } from "../../src/engine/sae/directions.ts";
import { latentSteerHook } from "../../src/engine/sae/hooks.ts";
import { type SaeConfig, SparseAutoencoder } from "../../src/engine/sae/sae.ts";
import { saveSaeLens } from "../../src/engine/sae/saelens.ts";
import { steeringHooks } from "../../src/interp/interventions.ts";
import { runCommandInProcess } from "../support/cli-in-process.ts";
import { saveTinyModel, tinyModel } from "../support/tiny-model.ts";

const ws = mkdtempSync(join(tmpdir(), "emlab-vectors-sae-"));
afterAll(() => rmSync(ws, { recursive: true, force: true }));

const D = 16; // tinyModel's hidden size
const cfgAt = (hookName: string, hookLayer: number, extra: Partial<SaeConfig> = {}): SaeConfig => ({
  architecture: "relu",
  dIn: D,
  dSae: 12,
  hookName,
  hookLayer,
  applyBDecToInput: true,
  normalizeActivations: "none",
  ...extra,
});

/** An SAE saved in the SAELens layout, its decoder rows of unequal, non-unit norms. */
function savedSae(name: string, cfg: SaeConfig): { dir: string; sae: SparseAutoencoder } {
  const sae = SparseAutoencoder.init(cfg, 11);
  for (let l = 0; l < cfg.dSae; l++) for (let i = 0; i < D; i++) sae.wDec[l * D + i] *= 0.5 + l;
  const dir = join(ws, name);
  saveSaeLens(dir, sae);
  return { dir, sae };
}

/** W_dec[latent] / |W_dec[latent]|, from the raw row (float64 norm). */
function unitRow(sae: SparseAutoencoder, latent: number): number[] {
  const row = Array.from(sae.wDec.subarray(latent * D, (latent + 1) * D));
  const n = Math.hypot(...row);
  return row.map((v) => v / n);
}

const exportSae = (args: string[]) =>
  runCommandInProcess(registerVectorsCommand, ["vectors", "export-sae", ...args]);

describe("emlab vectors export-sae", () => {
  const { dir: saeDir, sae } = savedSae("blocks1", cfgAt("blocks.1.hook_resid_post", 1));

  it("one latent: direction.1 is its unit decoder row", async () => {
    const out = join(ws, "one.gguf");
    const r = await exportSae(["--sae", saeDir, "--latent", "3", "--model-hint", "llama", "--out", out]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${out}: direction.1 (blocks.1.hook_resid_post)`);
    const cv = readControlVector(out);
    expect(cv.modelHint).toBe("llama");
    expect([...cv.directions.keys()]).toEqual([1]);
    const got = cv.directions.get(1)!;
    const want = unitRow(sae, 3);
    for (let i = 0; i < D; i++) expect(got[i]).toBeCloseTo(want[i], 6);
    // Exactly the vector latentSteerHook adds (same float32 rounding).
    expect(got).toEqual(unitDecoderDirection(sae, 3));
    expect(Math.hypot(...got)).toBeCloseTo(1, 6);
  });

  it("two latents at --scale 2.5: 2.5 · the sum of their unit rows", async () => {
    const out = join(ws, "two.gguf");
    const r = await exportSae([
      "--sae",
      saeDir,
      "--latent",
      "3",
      "--latent",
      "7",
      "--scale",
      "2.5",
      "--model-hint",
      "qwen2",
      "--out",
      out,
    ]);
    expect(r.code).toBe(0);
    const got = readControlVector(out).directions.get(1)!;
    const u3 = unitRow(sae, 3);
    const u7 = unitRow(sae, 7);
    for (let i = 0; i < D; i++) expect(got[i]).toBeCloseTo(2.5 * (u3[i] + u7[i]), 5);
    expect(readControlVector(out).modelHint).toBe("qwen2");
  });

  it("steers the engine as latentSteerHook does, at the SAE's block", () => {
    const { model } = tinyModel(5);
    const prompt = [[1, 4, 6, 2, 9, 3]];
    const logits = (hooks?: Parameters<typeof mergeHooks>[0]) =>
      Array.from(noGrad(() => model.forward(prompt, { lastOnly: true, hooks })).data);
    const plain = logits();
    const one = saeLatentDirections(sae, [3]);
    const viaFile = logits(steeringHooks(one, 4, { layers: [1] }));
    const viaSae = logits({ "blocks.1.hook_resid_post": latentSteerHook(sae, 3, 4) });
    expect(viaFile).toEqual(viaSae);
    const moved = Math.max(...plain.map((v, i) => Math.abs(v - viaSae[i])));
    expect(moved).toBeGreaterThan(0.05);
    // Two latents: the summed file = both latents steered at once.
    const two = saeLatentDirections(sae, [3, 7], 1.5);
    const both = logits(
      mergeHooks(
        { "blocks.1.hook_resid_post": latentSteerHook(sae, 3, 1.5) },
        { "blocks.1.hook_resid_post": latentSteerHook(sae, 7, 1.5) },
      ),
    );
    const summed = logits(steeringHooks(two, 1, { layers: [1] }));
    for (let i = 0; i < both.length; i++) expect(summed[i]).toBeCloseTo(both[i], 4);
  });

  it("takes the model hint from a local model_name", async () => {
    const modelDir = join(ws, "tiny-model");
    saveTinyModel(modelDir, 3);
    const { dir } = savedSae("with-model", cfgAt("blocks.1.hook_resid_post", 1, { modelName: modelDir }));
    const out = join(ws, "hinted.gguf");
    const r = await exportSae(["--sae", dir, "--latent", "0", "--out", out]);
    expect(r.err).toBe("");
    expect(readControlVector(out).modelHint).toBe("llama");
    // Default output: in the SAE directory, named by the latents.
    const d = await exportSae(["--sae", dir, "--latent", "0", "--latent", "2"]);
    expect(d.code).toBe(0);
    expect(d.out).toContain(join(dir, "control-vector.latent-0-2.gguf"));
  });

  it("refuses block 0 and hooks that are not a block's output, saying why", async () => {
    const { dir: zero } = savedSae("blocks0", cfgAt("blocks.0.hook_resid_post", 0));
    const z = await exportSae([
      "--sae",
      zero,
      "--latent",
      "1",
      "--model-hint",
      "llama",
      "--out",
      join(ws, "z.gguf"),
    ]);
    expect(z.code).toBe(2);
    expect(z.err).toContain(join(zero, "cfg.json"));
    expect(z.err).toMatch(
      /metadata\.hook_name: "blocks\.0\.hook_resid_post" is block 0's output; llama\.cpp .* from block 1 on/,
    );
    for (const hook of ["blocks.1.hook_mlp_out", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_z"]) {
      const { dir } = savedSae(hook, cfgAt(hook, 1));
      const r = await exportSae([
        "--sae",
        dir,
        "--latent",
        "1",
        "--model-hint",
        "llama",
        "--out",
        join(ws, "h.gguf"),
      ]);
      expect(r.code, hook).toBe(2);
      expect(r.err).toContain(
        `metadata.hook_name: SAE hook "${hook}" is not a block's output (blocks.L.hook_resid_post)`,
      );
    }
  });

  it("names each bad option", async () => {
    const cases: [string[], RegExp][] = [
      [["--latent", "12"], /--latent: .*latent 12 is outside 0\.\.11/],
      [["--latent", "2", "--latent", "2"], /--latent: .*latent 2 is given twice/],
      [["--latent", "x"], /--latent: expected a latent index/],
      [[], /--latent: give at least one latent index/],
      [["--latent", "1", "--scale", "0"], /--scale: expected a non-zero number, got '0'/],
      [["--latent", "1", "--scale", "big"], /--scale: expected a non-zero number/],
    ];
    for (const [args, error] of cases) {
      const r = await exportSae([
        "--sae",
        saeDir,
        "--model-hint",
        "llama",
        "--out",
        join(ws, "bad.gguf"),
        ...args,
      ]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(error);
    }
    // No hint to be found: the SAE's model_name is not a local directory.
    const noHint = await exportSae(["--sae", saeDir, "--latent", "1", "--out", join(ws, "nohint.gguf")]);
    expect(noHint.code).toBe(2);
    expect(noHint.err).toMatch(/--model-hint: the SAE's model_name is not a local model directory/);
    // Not an SAE, or a malformed one: the file is named.
    const missing = await exportSae(["--sae", join(ws, "nope"), "--latent", "1", "--model-hint", "llama"]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`${join(ws, "nope")}: no such SAE directory`);
    const broken = join(ws, "broken");
    savedSae("broken", cfgAt("blocks.1.hook_resid_post", 1));
    writeFileSync(join(broken, "cfg.json"), "{");
    const b = await exportSae(["--sae", broken, "--latent", "1", "--model-hint", "llama"]);
    expect(b.code).toBe(2);
    expect(b.err).toContain(`${join(broken, "cfg.json")}: not valid JSON`);
  });
});
