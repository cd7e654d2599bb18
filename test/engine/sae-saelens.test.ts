// emlab's SAEs against sae_lens 6.54.12 (scripts/reference/sae_lens_roundtrip.py in .venv-torch):
// what emlab writes loads with SAE.load_from_disk with the same weights and encodings, and
// what sae_lens writes loads here and encodes the same inputs, both to 1e-5.
// EMLAB_SAE_LENS_PYTHON names another python with sae_lens (for development).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeSafetensors } from "../../src/engine/io/safetensors.ts";
import { Rng } from "../../src/engine/rng.ts";
import { type SaeConfig, SparseAutoencoder } from "../../src/engine/sae/sae.ts";
import { loadSaeLens, saveSaeLens } from "../../src/engine/sae/saelens.ts";
import { trainSae } from "../../src/engine/sae/train.ts";
import { torchPython, torchSkipReason } from "../support/python-ref.ts";

const SCRIPT = join(import.meta.dirname, "../../scripts/reference/sae_lens_roundtrip.py");

function hasSaeLens(python: string | null | undefined): boolean {
  if (!python) return false;
  try {
    execFileSync(python, ["-c", "import sae_lens"], { stdio: "ignore", timeout: 120_000 });
    return true;
  } catch {
    return false;
  }
}

const python = [process.env.EMLAB_SAE_LENS_PYTHON, torchPython].find((p) => hasSaeLens(p)) ?? null;
if (!python) {
  console.warn(
    `sae_lens interop: ${torchSkipReason ?? "the torch venv has no sae_lens (pip install -r scripts/reference/requirements-torch.txt)"}: skipped`,
  );
}

interface Described {
  architecture: string;
  k: number | null;
  hook_name: string;
  max_weight_diff: number;
  encodings: number[][];
  reconstructions: number[][];
}

const dIn = 16;
const dSae = 64;
const n = 12;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(!python)("SAELens interop with sae_lens 6.54.12", () => {
  const tmp = mkdtempSync(join(tmpdir(), "emlab-sae-lens-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const rng = new Rng(21);
  const x = Float32Array.from({ length: n * dIn }, () => rng.normal());

  it("emlab's TopK and ReLU SAEs load in sae_lens; sae_lens' TopK and standard SAEs load here; same encodings", async () => {
    const base: SaeConfig = {
      architecture: "topk",
      dIn,
      dSae,
      k: 6,
      hookName: "blocks.1.hook_resid_post",
      hookLayer: 1,
      modelName: "organism",
      applyBDecToInput: true,
      normalizeActivations: "none",
      extra: { context_size: 32 },
    };
    // A trained TopK SAE (non-trivial biases) and a ReLU one initialised with random biases.
    const batches = Array.from({ length: 20 }, () =>
      Float32Array.from({ length: 64 * dIn }, () => rng.normal()),
    );
    const { sae: topk } = await trainSae(base, batches, { seed: 1, learningRate: 1e-2, batchSize: 64 });
    const reluCfg: SaeConfig = { ...base, architecture: "relu", applyBDecToInput: false };
    delete reluCfg.k;
    const relu = SparseAutoencoder.init(reluCfg, 2);
    for (let i = 0; i < dSae; i++) relu.bEnc[i] = 0.3 * rng.normal();
    for (let i = 0; i < dIn; i++) relu.bDec[i] = rng.normal();
    const ours = [topk, relu];
    const dirs = ours.map((_, i) => join(tmp, `emlab-${i}`));
    for (let i = 0; i < ours.length; i++) saveSaeLens(dirs[i], ours[i]);
    const inputs = join(tmp, "x.safetensors");
    writeSafetensors(inputs, new Map([["x", { shape: [n, dIn], data: x }]]));
    const created = [
      { dir: join(tmp, "sl-topk"), architecture: "topk", d_in: dIn, d_sae: dSae, k: 7, seed: 3 },
      { dir: join(tmp, "sl-standard"), architecture: "standard", d_in: dIn, d_sae: dSae, seed: 4 },
      { dir: join(tmp, "sl-topk-nob"), architecture: "topk", d_in: dIn, d_sae: dSae, k: 4, seed: 5 },
    ].map((c, i) => ({ ...c, hook_name: "blocks.2.hook_resid_post", apply_b_dec_to_input: i !== 2 }));
    const spec = join(tmp, "spec.json");
    writeFileSync(spec, JSON.stringify({ inputs, load: dirs, create: created }));
    const out = JSON.parse(execFileSync(python!, [SCRIPT, spec], { encoding: "utf8", timeout: 300_000 })) as {
      sae_lens_version: string;
      loaded: Described[];
      created: Described[];
    };
    expect(out.sae_lens_version).toBe("6.54.12");

    // emlab → sae_lens.
    expect(out.loaded.map((d) => d.architecture)).toEqual(["topk", "standard"]);
    expect(out.loaded[0].k).toBe(6);
    ours.forEach((s, i) => {
      const d = out.loaded[i];
      expect(d.hook_name).toBe("blocks.1.hook_resid_post");
      expect(d.max_weight_diff).toBe(0);
      expect(maxDiff(s.encode(x, n), d.encodings.flat())).toBeLessThan(1e-5);
      expect(maxDiff(s.decode(s.encode(x, n), n), d.reconstructions.flat())).toBeLessThan(1e-5);
      // sae_lens' re-save of our SAE loads back to the same bytes.
      const again = loadSaeLens(`${dirs[i]}-resaved`);
      expect(again.cfg.architecture).toBe(s.cfg.architecture);
      expect(again.cfg.hookName).toBe(s.cfg.hookName);
      expect(again.cfg.extra?.context_size).toBe(32);
      for (const key of ["wEnc", "bEnc", "wDec", "bDec"] as const) expect(again[key]).toEqual(s[key]);
    });
    const topkRow = out.loaded[0].encodings[0];
    expect(topkRow.filter((v) => v !== 0).length).toBeLessThanOrEqual(6);

    // sae_lens → emlab.
    created.forEach((c, i) => {
      const sae = loadSaeLens(c.dir);
      const d = out.created[i];
      expect(sae.cfg.architecture).toBe(c.architecture === "topk" ? "topk" : "relu");
      expect(sae.cfg.k).toBe(c.k);
      expect(sae.cfg.hookName).toBe("blocks.2.hook_resid_post");
      expect(sae.cfg.hookLayer).toBe(2);
      expect(sae.cfg.applyBDecToInput).toBe(c.apply_b_dec_to_input);
      const z = sae.encode(x, n);
      expect(maxDiff(z, d.encodings.flat())).toBeLessThan(1e-5);
      expect(maxDiff(sae.decode(z, n), d.reconstructions.flat())).toBeLessThan(1e-5);
      // The same latents are active (TopK: the same selection).
      for (let r = 0; r < n; r++)
        for (let j = 0; j < dSae; j++) expect(z[r * dSae + j] > 0).toBe(d.encodings[r][j] > 0);
    });
  }, 300_000);
});
