import { describe, expect, it } from "vitest";
import { Rng } from "../../../src/engine/rng.ts";
import type { SaeConfig } from "../../../src/engine/sae/sae.ts";
import { projectDecoderGrad, type SaeParams, saeLossAndGrads } from "../../../src/engine/sae/train.ts";

// Float64 finite differences of the hand-written SAE gradients (TopK with AuxK, ReLU + L1).

const dIn = 6;
const dSae = 20;
const n = 5;

function cfgOf(architecture: "topk" | "relu", applyBDecToInput: boolean): SaeConfig {
  return {
    architecture,
    dIn,
    dSae,
    k: 4,
    hookName: "blocks.0.hook_resid_post",
    hookLayer: 0,
    applyBDecToInput,
    normalizeActivations: "none",
  };
}

function randParams(rng: Rng): SaeParams<Float64Array> {
  const r = (size: number, s: number) => Float64Array.from({ length: size }, () => rng.normal() * s);
  return { weT: r(dSae * dIn, 0.5), bEnc: r(dSae, 0.3), wDec: r(dSae * dIn, 0.5), bDec: r(dIn, 0.3) };
}

function zeros(): SaeParams<Float64Array> {
  return {
    weT: new Float64Array(dSae * dIn),
    bEnc: new Float64Array(dSae),
    wDec: new Float64Array(dSae * dIn),
    bDec: new Float64Array(dIn),
  };
}

/** Worst |analytic − numeric| / max(1, |analytic|) over every parameter entry. */
function worstError(cfg: SaeConfig, deadMask: Uint8Array | null, seed: number): number {
  const rng = new Rng(seed);
  const p = randParams(rng);
  const x = Float64Array.from({ length: n * dIn }, () => rng.normal());
  const opts: Parameters<typeof saeLossAndGrads<Float64Array>>[4] = {
    deadMask,
    auxKCoefficient: 0.7,
    l1Coefficient: 0.3,
  };
  const g = zeros();
  const base = saeLossAndGrads(cfg, p, x, n, opts, g);
  // AuxK's target e = x − x̂ carries no gradient (sae_lens detaches it): hold it fixed.
  if (base.error) opts.fixedError = base.error as Float64Array;
  const h = 1e-6;
  let worst = 0;
  for (const key of ["weT", "bEnc", "wDec", "bDec"] as const) {
    const w = p[key];
    for (let i = 0; i < w.length; i++) {
      const keep = w[i];
      w[i] = keep + h;
      const up = saeLossAndGrads(cfg, p, x, n, opts, null).loss;
      w[i] = keep - h;
      const down = saeLossAndGrads(cfg, p, x, n, opts, null).loss;
      w[i] = keep;
      const num = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(num - g[key][i]) / Math.max(1, Math.abs(g[key][i])));
    }
  }
  return worst;
}

describe("SAE gradients vs central differences (float64)", () => {
  const dead = new Uint8Array(dSae);
  for (let j = 0; j < dSae; j += 3) dead[j] = 1; // 7 dead latents: k_aux = min(3, 7) with scale 1
  const fewDead = new Uint8Array(dSae);
  fewDead[1] = 1; // one dead latent: k_aux = 1, scale 1/3
  for (const apply of [true, false]) {
    it(`TopK reconstruction loss (applyBDecToInput ${apply})`, () => {
      expect(worstError(cfgOf("topk", apply), null, 1)).toBeLessThan(1e-6);
    });
    it(`TopK + AuxK on dead latents (applyBDecToInput ${apply})`, () => {
      expect(worstError(cfgOf("topk", apply), dead, 2)).toBeLessThan(1e-6);
      expect(worstError(cfgOf("topk", apply), fewDead, 3)).toBeLessThan(1e-6);
    });
    it(`ReLU + L1 (applyBDecToInput ${apply})`, () => {
      expect(worstError(cfgOf("relu", apply), null, 4)).toBeLessThan(1e-6);
    });
  }

  it("the AuxK term is what sae_lens computes: coef · min(dead/k_aux, 1) · ‖ê − e‖² per row", () => {
    const cfg = cfgOf("topk", true);
    const rng = new Rng(5);
    const p = randParams(rng);
    const x = Float64Array.from({ length: n * dIn }, () => rng.normal());
    const with1 = saeLossAndGrads(
      cfg,
      p,
      x,
      n,
      { deadMask: fewDead, auxKCoefficient: 1, l1Coefficient: 0 },
      null,
    );
    // By hand: one dead latent (j = 1), k_aux = 1, scale 1/3, its raw pre-activation times W_dec[1].
    let expected = 0;
    for (let r = 0; r < n; r++) {
      let pre = p.bEnc[1];
      for (let i = 0; i < dIn; i++) pre += (x[r * dIn + i] - p.bDec[i]) * p.weT[1 * dIn + i];
      const z = new Float64Array(dSae);
      for (let j = 0; j < dSae; j++) {
        z[j] = p.bEnc[j];
        for (let i = 0; i < dIn; i++) z[j] += (x[r * dIn + i] - p.bDec[i]) * p.weT[j * dIn + i];
      }
      const order = [...z.keys()].sort((a, b) => z[b] - z[a] || a - b).slice(0, 4);
      for (let i = 0; i < dIn; i++) {
        let xh = p.bDec[i];
        for (const j of order) if (z[j] > 0) xh += z[j] * p.wDec[j * dIn + i];
        const e = x[r * dIn + i] - xh;
        const eh = pre * p.wDec[1 * dIn + i];
        expected += (eh - e) ** 2;
      }
    }
    expect(with1.aux).toBeCloseTo(expected / n / 3, 10);
  });

  it("projectDecoderGrad leaves no component along each decoder row", () => {
    const rng = new Rng(6);
    const p = randParams(rng);
    const g = randParams(rng).wDec;
    projectDecoderGrad(p.wDec, g, dSae, dIn);
    for (let j = 0; j < dSae; j++) {
      let dot = 0;
      for (let i = 0; i < dIn; i++) dot += g[j * dIn + i] * p.wDec[j * dIn + i];
      expect(Math.abs(dot)).toBeLessThan(1e-12);
    }
  });
});
