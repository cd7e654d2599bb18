import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { noGrad } from "../../../src/engine/autograd.ts";
import type { HookContext } from "../../../src/engine/hooks.ts";
import { crossEntropy } from "../../../src/engine/ops/cross-entropy.ts";
import { loadModel } from "../../../src/engine/pretrained.ts";
import { Rng } from "../../../src/engine/rng.ts";
import {
  latentClampHook,
  latentSteerHook,
  latentsClampHook,
  spliceHook,
} from "../../../src/engine/sae/hooks.ts";
import { saeMetrics, splicedCrossEntropy } from "../../../src/engine/sae/metrics.ts";
import { type SaeConfig, SparseAutoencoder } from "../../../src/engine/sae/sae.ts";
import { Tensor } from "../../../src/engine/tensor.ts";

const model = loadModel(join(import.meta.dirname, "../../fixtures/engine/llama_tied_gqa"));
const d = model.shape.hiddenSize;
const ctx: HookContext = { name: "blocks.1.hook_resid_post", layer: 1, batch: 2, seq: 3, pos0: 0 };
const cfg: SaeConfig = {
  architecture: "topk",
  dIn: d,
  dSae: 4 * d,
  k: 5,
  hookName: "blocks.1.hook_resid_post",
  hookLayer: 1,
  applyBDecToInput: true,
  normalizeActivations: "none",
};
const sae = SparseAutoencoder.init(cfg, 9);
const rng = new Rng(1);
for (let i = 0; i < sae.bEnc.length; i++) sae.bEnc[i] = 0.05 * rng.normal();
const act = new Tensor(
  Float32Array.from({ length: 6 * d }, () => rng.normal()),
  [2, 3, d],
);
const ids = [
  [1, 4, 7, 2, 9, 5],
  [3, 3, 8, 10, 11, 2],
];

describe("SAE hooks", () => {
  it("spliceHook returns the reconstruction at every position", () => {
    const out = spliceHook(sae)(act, ctx) as Tensor;
    expect(out.shape).toEqual([2, 3, d]);
    expect(out.data).toEqual(sae.decode(sae.encode(act.data, 6), 6));
  });

  it("latentSteerHook adds coef · unit(W_dec[latent])", () => {
    sae.wDec[7 * d] *= 3; // a non-unit row: the hook normalises it
    const dir = sae.decoderDirection(7);
    const norm = Math.hypot(...dir);
    const out = latentSteerHook(sae, 7, 2.5)(act, ctx) as Tensor;
    for (let r = 0; r < 6; r++)
      for (let i = 0; i < d; i++)
        expect(out.data[r * d + i]).toBeCloseTo(act.data[r * d + i] + (2.5 * dir[i]) / norm, 5);
    for (let i = 0; i < d; i++) sae.wDec[7 * d + i] = dir[i] / norm;
  });

  it("latentClampHook: clamping to the current value is a no-op; another value moves the latent there", () => {
    const z = sae.encode(act.data, 6);
    const dS = cfg.dSae;
    // A latent active on row 0: clamp every row to row 0's value.
    const latent = [...z.subarray(0, dS)].findIndex((v) => v > 0);
    const current = z[latent];
    const out = latentClampHook(sae, latent, current)(act, ctx) as Tensor;
    expect(Math.max(...out.data.subarray(0, d).map((v, i) => Math.abs(v - act.data[i])))).toBeLessThan(1e-6);
    // Error-preserving: x + (v − z(x))·W_dec[latent] on every row.
    const dir = sae.decoderDirection(latent);
    const out2 = latentClampHook(sae, latent, 4)(act, ctx) as Tensor;
    for (let r = 0; r < 6; r++)
      for (let i = 0; i < d; i++)
        expect(out2.data[r * d + i]).toBeCloseTo(act.data[r * d + i] + (4 - z[r * dS + latent]) * dir[i], 5);
    // The clamped activation's own encoding has the latent near 4 on the row it was active on.
    expect(sae.encode(out2.data.subarray(0, d), 1)[latent]).toBeGreaterThan(3);
  });

  it("latentsClampHook: x + Σ (v_l − z_l(x))·W_dec[l] from one encoding of x", () => {
    const z = sae.encode(act.data, 6);
    const dS = cfg.dSae;
    const ls = [3, 11];
    const out = latentsClampHook(sae, ls, [-0.5, 2])(act, ctx) as Tensor;
    const dirs = ls.map((l) => sae.decoderDirection(l));
    for (let r = 0; r < 6; r++)
      for (let i = 0; i < d; i++)
        expect(out.data[r * d + i]).toBeCloseTo(
          act.data[r * d + i] + (-0.5 - z[r * dS + 3]) * dirs[0][i] + (2 - z[r * dS + 11]) * dirs[1][i],
          5,
        );
    expect(() => latentsClampHook(sae, ls, [0])).toThrow(/one value per latent/);
  });

  it("hooks refuse activations of another width", () => {
    const bad = new Tensor(new Float32Array(2 * (d + 1)), [1, 2, d + 1]);
    expect(() => spliceHook(sae)(bad, ctx)).toThrow(/expects/);
  });
});

describe("saeMetrics and splicedCrossEntropy", () => {
  it("metrics: EV, L0 and dead share by definition", () => {
    const rows = act.data;
    const m = saeMetrics(sae, rows, 6);
    const z = sae.encode(rows, 6);
    const xh = sae.decode(z, 6);
    const mean = Array.from(
      { length: d },
      (_, i) => [0, 1, 2, 3, 4, 5].reduce((s, r) => s + rows[r * d + i], 0) / 6,
    );
    let sse = 0;
    let sst = 0;
    for (let r = 0; r < 6; r++)
      for (let i = 0; i < d; i++) {
        sse += (rows[r * d + i] - xh[r * d + i]) ** 2;
        sst += (rows[r * d + i] - mean[i]) ** 2;
      }
    expect(m.explainedVariance).toBeCloseTo(1 - sse / sst, 5);
    expect(m.l0).toBeCloseTo([...z].filter((v) => v !== 0).length / 6, 10);
    const live = new Set<number>();
    for (let i = 0; i < z.length; i++) if (z[i] !== 0) live.add(i % cfg.dSae);
    expect(m.deadShare).toBeCloseTo(1 - live.size / cfg.dSae, 10);
    expect(m.tokens).toBe(6);
  });

  it("clean / spliced / zero-ablated cross-entropy equal forwards with those hooks", () => {
    const r = splicedCrossEntropy(model, sae, [ids, [ids[0]]]);
    const ce = (hooks?: Parameters<typeof model.forward>[1]) =>
      noGrad(() => {
        let sum = 0;
        let count = 0;
        for (const batch of [ids, [ids[0]]]) {
          const logits = model.forward(batch, hooks);
          const T = batch[0].length;
          const targets = new Int32Array(batch.length * T).fill(-100);
          for (let b = 0; b < batch.length; b++)
            for (let i = 0; i + 1 < T; i++) targets[b * T + i] = batch[b][i + 1];
          sum +=
            crossEntropy(logits.reshape([batch.length * T, logits.cols]), targets).item() *
            batch.length *
            (T - 1);
          count += batch.length * (T - 1);
        }
        return sum / count;
      });
    expect(r.clean).toBeCloseTo(ce(), 6);
    expect(r.spliced).toBeCloseTo(ce({ hooks: { [cfg.hookName]: spliceHook(sae) } }), 6);
    expect(r.zeroAblated).toBeCloseTo(
      ce({ hooks: { [cfg.hookName]: (a: Tensor) => new Tensor(new Float32Array(a.size), a.shape) } }),
      6,
    );
    expect(r.increase).toBeCloseTo(r.spliced - r.clean, 10);
    expect(r.spliced).not.toBeCloseTo(r.clean, 3);
  });

  it("refuses an SAE for another hook point or width", () => {
    const other = SparseAutoencoder.init({ ...cfg, hookName: "blocks.9.hook_resid_post" }, 1);
    expect(() => splicedCrossEntropy(model, other, [ids])).toThrow(
      /no hook point "blocks\.9\.hook_resid_post"/,
    );
  });
});
