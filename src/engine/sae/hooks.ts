import type { HookFn } from "../hooks.ts";
import { add, addVector } from "../ops/elementwise.ts";
import { Tensor } from "../tensor.ts";
import { unitDecoderDirection } from "./directions.ts";
import type { SparseAutoencoder } from "./sae.ts";

/**
 * Hooks that put an SAE into the forward pass at its hook point (activations
 * [batch, seq, dIn]). The SAE is a constant: no gradient reaches its weights.
 */

function checkWidth(act: Tensor, sae: SparseAutoencoder, what: string): void {
  if (act.cols !== sae.cfg.dIn)
    throw new Error(`${what}: activation has ${act.cols} features, the SAE expects ${sae.cfg.dIn}`);
}

/** Replaces the activation by the SAE's reconstruction at every position (not differentiable). */
export function spliceHook(sae: SparseAutoencoder): HookFn {
  return (act) => {
    checkWidth(act, sae, "spliceHook");
    const n = act.rows;
    return new Tensor(sae.decode(sae.encode(act.data, n), n), act.shape);
  };
}

/** Adds coef · unit(W_dec[latent]) at every position (gradients flow to the activation). */
export function latentSteerHook(sae: SparseAutoencoder, latent: number, coef: number): HookFn {
  const dir = unitDecoderDirection(sae, latent);
  const u = new Tensor(dir, [dir.length]);
  return (act) => {
    checkWidth(act, sae, "latentSteerHook");
    return addVector(act, u, coef);
  };
}

/**
 * Clamps one latent, keeping the SAE's error term: x + (value − z_latent(x)) · W_dec[latent],
 * z_latent(x) the latent's activation in the SAE's encoding of x (0 when TopK leaves it
 * out). Clamping to the current value leaves x unchanged. The edit is a per-position
 * constant, so gradients pass to x unchanged.
 */
export function latentClampHook(sae: SparseAutoencoder, latent: number, value: number): HookFn {
  return latentsClampHook(sae, [latent], [value]);
}

/**
 * Clamps several latents at once from one encoding of x: x + Σ_l (value_l − z_l(x)) · W_dec[l]
 * (latentClampHook for each, without one clamp's edit changing the next one's encoding).
 */
export function latentsClampHook(
  sae: SparseAutoencoder,
  latents: readonly number[],
  values: readonly number[],
): HookFn {
  if (latents.length !== values.length) throw new Error("latentsClampHook: one value per latent");
  const dirs = latents.map((l) => sae.decoderDirection(l));
  const { dIn, dSae } = sae.cfg;
  return (act) => {
    checkWidth(act, sae, "latentClampHook");
    const n = act.rows;
    const z = sae.encode(act.data, n);
    const delta = new Float32Array(n * dIn);
    for (let r = 0; r < n; r++) {
      const o = r * dIn;
      for (let j = 0; j < latents.length; j++) {
        const c = values[j] - z[r * dSae + latents[j]];
        if (c === 0) continue;
        const dir = dirs[j];
        for (let i = 0; i < dIn; i++) delta[o + i] += c * dir[i];
      }
    }
    return add(act, new Tensor(delta, act.shape));
  };
}
