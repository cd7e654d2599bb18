import { addVector, projectOut } from "./ops/elementwise.ts";
import { Tensor } from "./tensor.ts";

/**
 * Hook points, named as in TransformerLens, with activations shaped [batch, seq, d_model].
 * A hook reads the activation and may return a replacement built from differentiable ops
 * (so gradients flow through a steering or ablation edit during training).
 */
export interface HookContext {
  name: string;
  /** Block index, or null for hook_embed. */
  layer: number | null;
  batch: number;
  seq: number;
  /** Absolute position of the first token in this call (non-zero while decoding with a KV cache). */
  pos0: number;
}

// biome-ignore lint/suspicious/noConfusingVoidType: a hook that only reads returns nothing.
export type HookFn = (act: Tensor, ctx: HookContext) => Tensor | undefined | void;

/** Hooks by point name; several functions on one point run in order. */
export type Hooks = Record<string, HookFn | HookFn[]> | Map<string, HookFn | HookFn[]>;

export const BLOCK_HOOKS = [
  "hook_resid_pre",
  "hook_attn_out",
  "hook_resid_mid",
  "hook_mlp_out",
  "hook_resid_post",
] as const;

/** Every hook point of a model with `layers` blocks, in execution order. */
export function hookNames(layers: number): string[] {
  const names = ["hook_embed"];
  for (let i = 0; i < layers; i++) for (const h of BLOCK_HOOKS) names.push(`blocks.${i}.${h}`);
  return names;
}

/** Normalises hooks to a map of arrays and rejects names the model does not have. */
export function resolveHooks(hooks: Hooks | undefined, layers: number): Map<string, HookFn[]> | null {
  if (!hooks) return null;
  const entries = hooks instanceof Map ? [...hooks.entries()] : Object.entries(hooks);
  if (entries.length === 0) return null;
  const valid = new Set(hookNames(layers));
  const out = new Map<string, HookFn[]>();
  for (const [name, fn] of entries) {
    if (!valid.has(name)) {
      throw new Error(
        `unknown hook point "${name}" (valid: hook_embed, blocks.{0..${layers - 1}}.${BLOCK_HOOKS.join("|")})`,
      );
    }
    out.set(name, [...(out.get(name) ?? []), ...(Array.isArray(fn) ? fn : [fn])]);
  }
  return out;
}

/** Merges hook sets (for stacking a steering hook on a caller's hooks). */
export function mergeHooks(...sets: (Hooks | undefined)[]): Map<string, HookFn[]> {
  const out = new Map<string, HookFn[]>();
  for (const set of sets) {
    if (!set) continue;
    const entries = set instanceof Map ? [...set.entries()] : Object.entries(set);
    for (const [name, fn] of entries)
      out.set(name, [...(out.get(name) ?? []), ...(Array.isArray(fn) ? fn : [fn])]);
  }
  return out;
}

function toTensor(v: ArrayLike<number> | Tensor): Tensor {
  return v instanceof Tensor ? v : new Tensor(Float32Array.from(v), [v.length]);
}

/** Steering: adds coef · vector at every position. A Tensor vector with requiresGrad is trained. */
export function steerHook(vector: ArrayLike<number> | Tensor, coef = 1): HookFn {
  const v = toTensor(vector);
  return (act) => addVector(act, v, coef);
}

/** Directional ablation: projects `direction` out of the activation at every position. */
export function ablateHook(direction: ArrayLike<number>): HookFn {
  const dir = Float32Array.from(direction);
  return (act) => projectOut(act, dir);
}
