import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeSafetensors } from "../../../src/engine/io/safetensors.ts";
import { Rng } from "../../../src/engine/rng.ts";
import { type SaeConfig, SparseAutoencoder } from "../../../src/engine/sae/sae.ts";
import { loadSaeLens, saveSaeLens } from "../../../src/engine/sae/saelens.ts";

const tmp = mkdtempSync(join(tmpdir(), "emlab-saelens-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function randomSae(cfg: SaeConfig, seed: number): SparseAutoencoder {
  const sae = SparseAutoencoder.init(cfg, seed);
  const rng = new Rng(seed + 100);
  for (const a of [sae.wEnc, sae.bEnc, sae.bDec]) for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return sae;
}

const topk: SaeConfig = {
  architecture: "topk",
  dIn: 6,
  dSae: 16,
  k: 3,
  hookName: "blocks.2.hook_resid_post",
  hookLayer: 2,
  modelName: "organism",
  applyBDecToInput: true,
  normalizeActivations: "none",
  extra: { context_size: 64, dataset_path: "world:7" },
};

describe("SAELens layout", () => {
  it("writes what sae_lens 6 reads: cfg.json keys and float32 tensors W_enc [d_in, d_sae], b_enc, W_dec, b_dec", () => {
    const sae = randomSae(topk, 1);
    const dir = join(tmp, "topk");
    saveSaeLens(dir, sae);
    const cfg = JSON.parse(readFileSync(join(dir, "cfg.json"), "utf8"));
    expect(cfg).toEqual({
      d_in: 6,
      d_sae: 16,
      dtype: "float32",
      device: "cpu",
      apply_b_dec_to_input: true,
      normalize_activations: "none",
      reshape_activations: "none",
      metadata: {
        sae_lens_version: "6.54.12",
        sae_lens_training_version: "6.54.12",
        context_size: 64,
        dataset_path: "world:7",
        hook_name: "blocks.2.hook_resid_post",
        hook_layer: 2,
        model_name: "organism",
      },
      k: 3,
      rescale_acts_by_decoder_norm: false,
      architecture: "topk",
    });
    const back = loadSaeLens(dir);
    expect(back.cfg).toEqual(topk);
    for (const key of ["wEnc", "bEnc", "wDec", "bDec"] as const) expect(back[key]).toEqual(sae[key]);
  });

  it('round-trips a ReLU SAE as architecture "standard"', () => {
    const cfg: SaeConfig = { ...topk, architecture: "relu", k: undefined, applyBDecToInput: false };
    delete cfg.k;
    delete cfg.extra;
    const sae = randomSae(cfg, 2);
    const dir = join(tmp, "relu");
    saveSaeLens(dir, sae);
    const raw = JSON.parse(readFileSync(join(dir, "cfg.json"), "utf8"));
    expect(raw.architecture).toBe("standard");
    expect(raw.k).toBeUndefined();
    const back = loadSaeLens(dir);
    expect(back.cfg).toEqual(cfg);
    const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
    expect(back.encode(x, 2)).toEqual(sae.encode(x, 2));
  });

  it("reads half-precision weights and a pre-6 top-level hook_name; hook_layer from the hook name", () => {
    const sae = randomSae(topk, 3);
    const dir = join(tmp, "half");
    saveSaeLens(dir, sae);
    const raw = JSON.parse(readFileSync(join(dir, "cfg.json"), "utf8"));
    raw.dtype = "bfloat16";
    raw.hook_name = raw.metadata.hook_name;
    delete raw.metadata.hook_name;
    delete raw.metadata.hook_layer;
    writeFileSync(join(dir, "cfg.json"), JSON.stringify(raw));
    writeSafetensors(
      join(dir, "sae_weights.safetensors"),
      new Map([
        ["W_enc", { shape: [6, 16], data: sae.wEnc }],
        ["b_enc", { shape: [16], data: sae.bEnc }],
        ["W_dec", { shape: [16, 6], data: sae.wDec }],
        ["b_dec", { shape: [6], data: sae.bDec }],
      ]),
      { dtype: "BF16" },
    );
    const back = loadSaeLens(dir);
    expect(back.cfg.hookName).toBe("blocks.2.hook_resid_post");
    expect(back.cfg.hookLayer).toBe(2);
    for (let i = 0; i < sae.wEnc.length; i++) expect(Math.abs(back.wEnc[i] - sae.wEnc[i])).toBeLessThan(0.02);
  });

  describe("clear errors naming the file and key", () => {
    const base = () => {
      const dir = mkdtempSync(join(tmp, "bad-"));
      saveSaeLens(dir, randomSae(topk, 4));
      return dir;
    };
    const editCfg = (dir: string, edit: (c: Record<string, unknown>) => void) => {
      const c = JSON.parse(readFileSync(join(dir, "cfg.json"), "utf8"));
      edit(c);
      writeFileSync(join(dir, "cfg.json"), JSON.stringify(c));
    };
    const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
      [
        "jumprelu",
        (c) => (c.architecture = "jumprelu"),
        /cfg\.json: architecture is "jumprelu"; emlab implements/,
      ],
      ["gated", (c) => (c.architecture = "gated"), /cfg\.json: architecture is "gated"/],
      [
        "normalisation",
        (c) => (c.normalize_activations = "expected_average_only_in"),
        /cfg\.json: normalize_activations is "expected_average_only_in"; only "none"/,
      ],
      ["dtype", (c) => (c.dtype = "float64"), /cfg\.json: dtype is "float64"/],
      ["k", (c) => delete c.k, /cfg\.json: k must be a positive integer/],
      ["d_in", (c) => (c.d_in = "6"), /cfg\.json: d_in must be a positive integer, got "6"/],
      [
        "hook_name",
        (c) => delete (c.metadata as Record<string, unknown>).hook_name,
        /cfg\.json: metadata\.hook_name/,
      ],
      [
        "rescale",
        (c) => (c.rescale_acts_by_decoder_norm = true),
        /cfg\.json: rescale_acts_by_decoder_norm must be false/,
      ],
      ["hook_z", (c) => (c.reshape_activations = "hook_z"), /cfg\.json: reshape_activations/],
    ];
    for (const [what, edit, message] of cases) {
      it(what, () => {
        const dir = base();
        editCfg(dir, edit);
        expect(() => loadSaeLens(dir)).toThrow(message);
        expect(() => loadSaeLens(dir)).toThrow(
          new RegExp(`^${join(dir, "cfg.json").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
        );
      });
    }
    it("malformed JSON and a missing directory", () => {
      const dir = base();
      writeFileSync(join(dir, "cfg.json"), "{ nope");
      expect(() => loadSaeLens(dir)).toThrow(/cfg\.json: not valid JSON/);
      expect(() => loadSaeLens(join(tmp, "absent"))).toThrow(/absent\/cfg\.json: no such file/);
    });
    it("a missing tensor and a wrong shape name the weights file", () => {
      const dir = base();
      const sae = randomSae(topk, 5);
      const w = join(dir, "sae_weights.safetensors");
      writeSafetensors(
        w,
        new Map([
          ["W_enc", { shape: [6, 16], data: sae.wEnc }],
          ["W_dec", { shape: [16, 6], data: sae.wDec }],
          ["b_dec", { shape: [6], data: sae.bDec }],
        ]),
      );
      expect(() => loadSaeLens(dir)).toThrow(/sae_weights\.safetensors: missing tensor "b_enc"/);
      writeSafetensors(
        w,
        new Map([
          ["W_enc", { shape: [16, 6], data: sae.wEnc }],
          ["b_enc", { shape: [16], data: sae.bEnc }],
          ["W_dec", { shape: [16, 6], data: sae.wDec }],
          ["b_dec", { shape: [6], data: sae.bDec }],
        ]),
      );
      expect(() => loadSaeLens(dir)).toThrow(
        /sae_weights\.safetensors: tensor "W_enc" has shape \[16, 6\], expected \[6, 16\]/,
      );
    });
  });
});
