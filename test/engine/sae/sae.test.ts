import { describe, expect, it } from "vitest";
import { Rng } from "../../../src/engine/rng.ts";
import { saeMetrics } from "../../../src/engine/sae/metrics.ts";
import { type SaeConfig, SparseAutoencoder, topkRows } from "../../../src/engine/sae/sae.ts";
import { trainSae } from "../../../src/engine/sae/train.ts";

function topkCfg(dIn: number, dSae: number, k: number): SaeConfig {
  return {
    architecture: "topk",
    dIn,
    dSae,
    k,
    hookName: "blocks.1.hook_resid_post",
    hookLayer: 1,
    applyBDecToInput: true,
    normalizeActivations: "none",
  };
}

/** Rows that are sums of `active` atoms of a random unit dictionary, with weights in [1, 3). */
function sparseData(rng: Rng, dict: Float32Array, atoms: number, dIn: number, n: number, active: number) {
  const x = new Float32Array(n * dIn);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < active; c++) {
      const a = rng.int(atoms);
      const w = 1 + 2 * rng.next();
      for (let i = 0; i < dIn; i++) x[r * dIn + i] += w * dict[a * dIn + i];
    }
  return x;
}

function unitDictionary(rng: Rng, atoms: number, dIn: number): Float32Array {
  const d = new Float32Array(atoms * dIn);
  for (let a = 0; a < atoms; a++) {
    let s = 0;
    for (let i = 0; i < dIn; i++) {
      d[a * dIn + i] = rng.normal();
      s += d[a * dIn + i] ** 2;
    }
    for (let i = 0; i < dIn; i++) d[a * dIn + i] /= Math.sqrt(s);
  }
  return d;
}

/** Atoms whose best-matching decoder row has cosine > 0.9. */
function recovered(sae: SparseAutoencoder, dict: Float32Array, atoms: number): number {
  const { dIn, dSae } = sae.cfg;
  let count = 0;
  for (let a = 0; a < atoms; a++) {
    let best = 0;
    for (let j = 0; j < dSae; j++) {
      let dot = 0;
      for (let i = 0; i < dIn; i++) dot += dict[a * dIn + i] * sae.wDec[j * dIn + i];
      best = Math.max(best, dot);
    }
    if (best > 0.9) count++;
  }
  return count;
}

function decoderNorms(sae: SparseAutoencoder): number[] {
  const { dIn, dSae } = sae.cfg;
  return Array.from({ length: dSae }, (_, j) => Math.hypot(...sae.wDec.subarray(j * dIn, (j + 1) * dIn)));
}

describe("SparseAutoencoder", () => {
  it("init: unit decoder rows, W_enc = W_decᵀ, zero biases; same bytes for a seed", () => {
    const a = SparseAutoencoder.init(topkCfg(8, 24, 3), 5);
    const b = SparseAutoencoder.init(topkCfg(8, 24, 3), 5);
    const c = SparseAutoencoder.init(topkCfg(8, 24, 3), 6);
    for (const nrm of decoderNorms(a)) expect(nrm).toBeCloseTo(1, 6);
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 24; j++) expect(a.wEnc[i * 24 + j]).toBe(a.wDec[j * 8 + i]);
    expect([...a.bEnc, ...a.bDec].every((v) => v === 0)).toBe(true);
    expect(Buffer.from(a.wDec.buffer).equals(Buffer.from(b.wDec.buffer))).toBe(true);
    expect(Buffer.from(a.wDec.buffer).equals(Buffer.from(c.wDec.buffer))).toBe(false);
    expect(a.decoderDirection(3)).toEqual(a.wDec.slice(24, 32));
    expect(() => a.decoderDirection(24)).toThrow(/outside 0..23/);
  });

  it("refuses bad configs with the field named", () => {
    expect(() => SparseAutoencoder.init({ ...topkCfg(8, 24, 3), k: 30 }, 0)).toThrow(/k must be/);
    expect(() => SparseAutoencoder.init({ ...topkCfg(8, 24, 3), dSae: 0 }, 0)).toThrow(/dSae/);
    expect(() =>
      SparseAutoencoder.init({ ...topkCfg(8, 24, 3), normalizeActivations: "layer_norm" as "none" }, 0),
    ).toThrow(/normalizeActivations/);
  });

  it("TopK: exactly k non-zeros for positive pre-activations, equal to them; ties go to the lower index", () => {
    const pre = Float32Array.from([0.5, 2, 2, -1, 3, 2, 0.1, 0.2]);
    const idx = new Int32Array(3);
    const val = new Float32Array(3);
    topkRows(pre, 1, 8, 3, idx, val);
    const picked = [...idx].map((j, s) => [j, val[s]]).sort((a, b) => a[0] - b[0]);
    expect(picked).toEqual([
      [1, 2],
      [2, 2],
      [4, 3],
    ]);
    // ReLU after topk (sae_lens' order): negative kept values become 0.
    topkRows(Float32Array.from([-3, -1, -2, -5]), 1, 4, 2, idx.subarray(0, 2), val.subarray(0, 2));
    expect([...val.subarray(0, 2)]).toEqual([0, 0]);

    // encode: z = topk(relu) of (x − b_dec)·W_enc + b_enc, checked against a direct computation.
    const sae = SparseAutoencoder.init(topkCfg(8, 40, 5), 2);
    const rng = new Rng(3);
    for (let i = 0; i < 40; i++) sae.bEnc[i] = 1 + 0.1 * rng.normal(); // keep pre-activations positive
    for (let i = 0; i < 8; i++) sae.bDec[i] = rng.normal();
    const x = Float32Array.from({ length: 6 * 8 }, () => rng.normal() * 0.2);
    const z = sae.encode(x, 6);
    for (let r = 0; r < 6; r++) {
      const row = z.subarray(r * 40, (r + 1) * 40);
      expect([...row].filter((v) => v !== 0)).toHaveLength(5);
      const pre = Array.from({ length: 40 }, (_, j) => {
        let s = sae.bEnc[j];
        for (let i = 0; i < 8; i++) s += (x[r * 8 + i] - sae.bDec[i]) * sae.wEnc[i * 40 + j];
        return s;
      });
      const top = [...pre.keys()].sort((a, b) => pre[b] - pre[a]).slice(0, 5);
      for (const j of top) expect(row[j]).toBeCloseTo(pre[j], 5);
      expect(Math.min(...top.map((j) => pre[j]))).toBeGreaterThanOrEqual(
        Math.max(...pre.filter((_, j) => !top.includes(j))),
      );
    }
    // decode is z·W_dec + b_dec.
    const xh = sae.decode(z, 6);
    for (let i = 0; i < 8; i++) {
      let s = sae.bDec[i];
      for (let j = 0; j < 40; j++) s += z[j] * sae.wDec[j * 8 + i];
      expect(xh[i]).toBeCloseTo(s, 5);
    }
  });

  it("ReLU: z = max(0, (x − b_dec)·W_enc + b_enc)", () => {
    const sae = SparseAutoencoder.init({ ...topkCfg(4, 10, 1), architecture: "relu", k: undefined }, 4);
    const x = Float32Array.from([0.3, -1, 2, 0.5]);
    const z = sae.encode(x, 1);
    for (let j = 0; j < 10; j++) {
      let s = 0;
      for (let i = 0; i < 4; i++) s += x[i] * sae.wEnc[i * 10 + j];
      expect(z[j]).toBeCloseTo(Math.max(0, s), 6);
    }
  });
});

describe("trainSae", () => {
  const dIn = 32;
  const atoms = 64;
  const rng = new Rng(11);
  const dict = unitDictionary(rng, atoms, dIn);
  const batches = Array.from({ length: 300 }, () => sparseData(rng, dict, atoms, dIn, 256, 3));
  const test = sparseData(rng, dict, atoms, dIn, 4000, 3);

  it("TopK on a known sparse dictionary: explained variance > 0.9, most atoms recovered, unit decoder rows", async () => {
    const cfg = topkCfg(dIn, 128, 4);
    const { sae, log } = await trainSae(cfg, batches, { seed: 1, learningRate: 3e-3, batchSize: 256 });
    expect(log).toHaveLength(300);
    expect(log.at(-1)!.tokens).toBe(300 * 256);
    const m = saeMetrics(sae, test, 4000);
    expect(m.explainedVariance).toBeGreaterThan(0.9);
    expect(m.l0).toBeLessThanOrEqual(4);
    expect(recovered(sae, dict, atoms)).toBeGreaterThanOrEqual(0.9 * atoms);
    for (const nrm of decoderNorms(sae)) expect(nrm).toBeCloseTo(1, 5);
  });

  it("is deterministic: same bytes for a seed, re-chunked batches and async input give the same SAE", async () => {
    const cfg = topkCfg(dIn, 64, 4);
    const opts = { seed: 3, learningRate: 3e-3, batchSize: 128, steps: 20 };
    const a = await trainSae(cfg, batches.slice(0, 12), opts);
    // The same rows in chunks of 64 through an async generator.
    async function* chunks() {
      for (const b of batches.slice(0, 12))
        for (let o = 0; o < b.length; o += 64 * dIn) yield b.slice(o, o + 64 * dIn);
    }
    const b = await trainSae(cfg, chunks(), opts);
    const c = await trainSae(cfg, batches.slice(0, 12), { ...opts, seed: 4 });
    expect(a.log).toHaveLength(20);
    for (const key of ["wEnc", "bEnc", "wDec", "bDec"] as const) {
      expect(Buffer.from(a.sae[key].buffer).equals(Buffer.from(b.sae[key].buffer))).toBe(true);
    }
    expect(Buffer.from(a.sae.wDec.buffer).equals(Buffer.from(c.sae.wDec.buffer))).toBe(false);
    expect(a.log).toEqual(b.log);
  });

  it("AuxK trains the dead latents: the loss is logged while latents are dead and changes the SAE", async () => {
    // 256 latents for 64 atoms with k = 2: many latents die (gradients: gradients.test.ts).
    const cfg = topkCfg(dIn, 256, 2);
    const opts = { seed: 2, learningRate: 3e-3, batchSize: 256, deadAfterTokens: 2560 };
    const withAux = await trainSae(cfg, batches.slice(0, 60), opts);
    const without = await trainSae(cfg, batches.slice(0, 60), { ...opts, auxKCoefficient: 0 });
    const early = withAux.log.slice(0, 10);
    const dying = withAux.log.filter((e) => e.deadShare > 0);
    expect(early.every((e) => e.auxLoss === 0 && e.deadShare === 0)).toBe(true); // nobody dead before 2560 rows
    expect(dying.length).toBeGreaterThan(0);
    // A step's AuxK uses the latents dead before it; the log's deadShare is after it.
    for (let i = 1; i < withAux.log.length; i++)
      expect(withAux.log[i].auxLoss! > 0).toBe(withAux.log[i - 1].deadShare > 0);
    expect(withAux.log.some((e) => e.auxLoss! > 0)).toBe(true);
    expect(without.log.every((e) => e.auxLoss === 0)).toBe(true);
    expect(Buffer.from(withAux.sae.wDec.buffer).equals(Buffer.from(without.sae.wDec.buffer))).toBe(false);
  });

  it("ReLU + L1 reconstructs the data sparsely with unit decoder rows", async () => {
    const cfg: SaeConfig = { ...topkCfg(dIn, 128, 1), architecture: "relu", k: undefined };
    const { sae, log } = await trainSae(cfg, batches, {
      seed: 1,
      learningRate: 1e-3,
      batchSize: 256,
      l1Coefficient: 0.3,
    });
    const m = saeMetrics(sae, test, 4000);
    expect(m.explainedVariance).toBeGreaterThan(0.85);
    expect(m.l0).toBeLessThan(128 / 2);
    expect(log.at(-1)!.l1).toBeGreaterThan(0);
    for (const nrm of decoderNorms(sae)) expect(nrm).toBeCloseTo(1, 5);
  });

  it("refuses a batch that is not rows × dIn and an empty input", async () => {
    const cfg = topkCfg(4, 8, 2);
    await expect(
      trainSae(cfg, [new Float32Array(6)], { seed: 0, learningRate: 1e-3, batchSize: 2 }),
    ).rejects.toThrow(/multiple of dIn 4/);
    await expect(trainSae(cfg, [], { seed: 0, learningRate: 1e-3, batchSize: 2 })).rejects.toThrow(
      /no activation rows/,
    );
  });
});
