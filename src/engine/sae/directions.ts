import type { SaeConfig, SparseAutoencoder } from "./sae.ts";

/**
 * SAE latents as residual-stream steering directions: the vector latentSteerHook adds
 * (coef · unit(W_dec[latent])), as a per-block map that steeringHooks and control vector
 * files (`direction.N` = blocks.N.hook_resid_post) take.
 */

const RESID_POST = /^blocks\.(\d+)\.hook_resid_post$/;

/**
 * The block whose output (`blocks.{L}.hook_resid_post`) the SAE reads, or an error saying why
 * its hook is not one: a steering vector is added to a block's output, and a direction read
 * at another point (attention / MLP outputs, resid_pre, ...) lives in another space.
 */
export function saeResidPostBlock(cfg: SaeConfig): number {
  const m = RESID_POST.exec(cfg.hookName);
  if (!m)
    throw new Error(
      `SAE hook "${cfg.hookName}" is not a block's output (blocks.L.hook_resid_post): steering vectors are added to the residual stream after a block, so only an SAE trained there gives one`,
    );
  const block = Number(m[1]);
  if (block !== cfg.hookLayer)
    throw new Error(`SAE hook "${cfg.hookName}" names block ${block} but hook_layer is ${cfg.hookLayer}`);
  return block;
}

/**
 * unit(W_dec[latent]), rounded to float32 as latentSteerHook rounds it, so steering with it
 * at coefficient c is latentSteerHook(sae, latent, c).
 */
export function unitDecoderDirection(sae: SparseAutoencoder, latent: number): Float32Array {
  const dir = sae.decoderDirection(latent);
  let n = 0;
  for (const v of dir) n += v * v;
  n = Math.sqrt(n);
  if (n === 0) throw new Error(`latent ${latent}: decoder row is zero (no direction)`);
  return dir.map((v) => v / n);
}

/**
 * scale · Σ unit(W_dec[l]) over `latents`, at the SAE's block: `Map([[L, vector]])` for an SAE
 * at blocks.L.hook_resid_post. One latent at scale 1 is latentSteerHook's unit vector exactly,
 * so steering with it at alpha c is latentSteerHook(sae, latent, c); the sum of several is
 * accumulated in float64, then scaled and rounded. Refuses an empty or repeated latent list,
 * a latent outside 0..d_sae-1, a zero decoder row, latents that cancel out, a non-finite or
 * zero scale, and SAEs at another hook than a block's output.
 */
export function saeLatentDirections(
  sae: SparseAutoencoder,
  latents: readonly number[],
  scale = 1,
): Map<number, Float32Array> {
  const block = saeResidPostBlock(sae.cfg);
  if (latents.length === 0) throw new Error("no latents given");
  const seen = new Set<number>();
  for (const l of latents) {
    if (seen.has(l)) throw new Error(`latent ${l} is given twice`);
    seen.add(l);
  }
  if (!Number.isFinite(scale) || scale === 0)
    throw new Error(`scale must be a non-zero finite number, got ${scale}`);
  const units = latents.map((l) => unitDecoderDirection(sae, l));
  if (units.length === 1) return new Map([[block, units[0].map((v) => v * scale)]]);
  const sum = new Float64Array(sae.cfg.dIn);
  for (const u of units) for (let i = 0; i < u.length; i++) sum[i] += u[i];
  if (sum.every((v) => v === 0))
    throw new Error(`latents ${latents.join(", ")}: their unit directions sum to zero`);
  return new Map([[block, Float32Array.from(sum, (v) => v * scale)]]);
}
