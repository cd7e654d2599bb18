import { noGrad } from "../autograd.ts";
import type { Hooks } from "../hooks.ts";
import { flattenBatch, type LlamaModel, type TokenBatch } from "../model.ts";
import { crossEntropy } from "../ops/cross-entropy.ts";
import { Tensor } from "../tensor.ts";
import { spliceHook } from "./hooks.ts";
import type { SparseAutoencoder } from "./sae.ts";

export interface SaeMetrics {
  /** 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² over the rows (x̄ their mean). */
  explainedVariance: number;
  /** Mean number of non-zero latents per row. */
  l0: number;
  /** Share of latents never active on these rows. */
  deadShare: number;
  tokens: number;
}

const CHUNK = 4096;

/** Reconstruction quality and sparsity of `sae` on n rows of activations. */
export function saeMetrics(sae: SparseAutoencoder, rows: Float32Array, n: number): SaeMetrics {
  const { dIn, dSae } = sae.cfg;
  if (rows.length !== n * dIn) throw new Error(`saeMetrics: ${rows.length} values for ${n} rows of ${dIn}`);
  if (n === 0) throw new Error("saeMetrics: no rows");
  const mean = new Float64Array(dIn);
  for (let r = 0; r < n; r++) for (let i = 0; i < dIn; i++) mean[i] += rows[r * dIn + i];
  for (let i = 0; i < dIn; i++) mean[i] /= n;
  let sse = 0;
  let sst = 0;
  let active = 0;
  const fired = new Uint8Array(dSae);
  for (let r0 = 0; r0 < n; r0 += CHUNK) {
    const m = Math.min(CHUNK, n - r0);
    const x = rows.subarray(r0 * dIn, (r0 + m) * dIn);
    const z = sae.encode(x, m);
    for (let r = 0; r < m; r++) {
      const o = r * dSae;
      for (let j = 0; j < dSae; j++) {
        if (z[o + j] !== 0) {
          active++;
          fired[j] = 1;
        }
      }
    }
    const xh = sae.decode(z, m);
    for (let i = 0; i < m * dIn; i++) {
      const e = x[i] - xh[i];
      const c = x[i] - mean[i % dIn];
      sse += e * e;
      sst += c * c;
    }
  }
  let dead = 0;
  for (let j = 0; j < dSae; j++) if (fired[j] === 0) dead++;
  return {
    explainedVariance: sst > 0 ? 1 - sse / sst : sse === 0 ? 1 : Number.NEGATIVE_INFINITY,
    l0: active / n,
    deadShare: dead / dSae,
    tokens: n,
  };
}

/**
 * Next-token cross-entropy (nats per predicted token, pooled over the batches) of the
 * model as is, with the SAE's reconstruction spliced in at sae.cfg.hookName, and with that
 * activation zero-ablated. increase = spliced − clean.
 */
export function splicedCrossEntropy(
  model: LlamaModel,
  sae: SparseAutoencoder,
  batches: TokenBatch[],
): { clean: number; spliced: number; zeroAblated: number; increase: number } {
  const point = sae.cfg.hookName;
  if (!model.hookNames.includes(point))
    throw new Error(`splicedCrossEntropy: the model has no hook point "${point}" (the SAE's hookName)`);
  if (model.shape.hiddenSize !== sae.cfg.dIn)
    throw new Error(
      `splicedCrossEntropy: the model's width ${model.shape.hiddenSize} is not the SAE's dIn ${sae.cfg.dIn}`,
    );
  const sums = { clean: 0, spliced: 0, zeroAblated: 0 };
  let count = 0;
  const splice = spliceHook(sae);
  const zero = (act: Tensor) => new Tensor(new Float32Array(act.size), act.shape);
  noGrad(() => {
    for (const batch of batches) {
      const { ids, batch: B, seq: T } = flattenBatch(batch);
      if (T < 2) continue;
      const targets = new Int32Array(B * T).fill(-100);
      for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = ids[b * T + t + 1];
      const predicted = B * (T - 1);
      const tokens = { ids, batch: B, seq: T };
      const ce = (hooks?: Hooks) => {
        const logits = model.forward(tokens, hooks ? { hooks } : {});
        return crossEntropy(logits.reshape([B * T, logits.cols]), targets).item() * predicted;
      };
      sums.clean += ce();
      sums.spliced += ce({ [point]: splice });
      sums.zeroAblated += ce({ [point]: zero });
      count += predicted;
    }
  });
  if (count === 0) throw new Error("splicedCrossEntropy: no batch has two or more tokens to predict from");
  const clean = sums.clean / count;
  const spliced = sums.spliced / count;
  return { clean, spliced, zeroAblated: sums.zeroAblated / count, increase: spliced - clean };
}
