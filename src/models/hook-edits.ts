/**
 * Hook edits as data: what an intervention does to the residual stream, in a form that the
 * embedded engine compiles into hooks (src/models/local.ts) and that the HF worker receives
 * over HTTP (worker/, docs/worker.md) and applies with PyTorch forward hooks. One schema,
 * so a steering or ablation condition means the same on either engine.
 *
 * Hook names are TransformerLens': `hook_embed` and `blocks.{l}.{hook_resid_pre |
 * hook_attn_out | hook_resid_mid | hook_mlp_out | hook_resid_post}` (docs/worker.md has the
 * table of what each is in HF transformers' Llama / Qwen2 / Mistral decoder layers).
 *
 * Positions are absolute token positions of the sequence; P is the prompt's length (the
 * whole input for activation and logit reads):
 *   "all"                        every position, generated ones included;
 *   "prompt"                     positions < P (generated tokens read the edited context
 *                                through attention but are not edited themselves);
 *   { from: p }                  positions >= p;
 *   { last_prompt_tokens: k }    positions >= P − k (e.g. from the assistant header on).
 */
import { z } from "zod";
import { BLOCK_HOOKS, hookNames } from "../engine/hooks.ts";

/** The engine's hook points are the names on the wire. */
export const HOOK_POINTS = BLOCK_HOOKS;

/** `hook_embed` or `blocks.{l}.{point}`. */
export const HookNameSchema = z
  .string()
  .regex(
    /^(hook_embed|blocks\.(0|[1-9][0-9]*)\.(hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post))$/,
    "a TransformerLens hook name: hook_embed or blocks.{layer}.hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post",
  );

export const EditPositionsSchema = z.union([
  z.literal("all"),
  z.literal("prompt"),
  z.object({ from: z.number().int().nonnegative() }).strict(),
  z.object({ last_prompt_tokens: z.number().int().nonnegative() }).strict(),
]);
export type EditPositions = z.infer<typeof EditPositionsSchema>;

const vector = z.array(z.number().finite()).min(1);

export const HookEditSchema = z.discriminatedUnion("op", [
  /** x + alpha · vector (vector as given, not normalised). */
  z
    .object({
      op: z.literal("add"),
      hook: HookNameSchema,
      vector,
      alpha: z.number().finite(),
      positions: EditPositionsSchema.default("all"),
    })
    .strict(),
  /** x − (x·û)û, û = vector / |vector|. */
  z
    .object({
      op: z.literal("project_out"),
      hook: HookNameSchema,
      vector,
      positions: EditPositionsSchema.default("all"),
    })
    .strict(),
  /** x − (x·û)û + value·û: the component along û set to value. */
  z
    .object({
      op: z.literal("clamp"),
      hook: HookNameSchema,
      vector,
      value: z.number().finite(),
      positions: EditPositionsSchema.default("all"),
    })
    .strict(),
]);
export type HookEdit = z.infer<typeof HookEditSchema>;
/** A hook edit as callers write it (positions may be left out: "all"). */
export type HookEditInput = z.input<typeof HookEditSchema>;

export const HookEditsSchema = z.array(HookEditSchema);

/** Layer of a block hook name (null for hook_embed). */
export function hookLayer(name: string): number | null {
  const m = /^blocks\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Every hook name of a model with `layers` blocks, in execution order. */
export const allHookNames = hookNames;

/** Whether position t (absolute) is edited, for a prompt of P tokens. */
export function positionEdited(spec: EditPositions, t: number, promptLength: number): boolean {
  if (spec === "all") return true;
  if (spec === "prompt") return t < promptLength;
  if ("from" in spec) return t >= spec.from;
  return t >= promptLength - spec.last_prompt_tokens;
}
