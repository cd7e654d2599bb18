/**
 * Interventions on the residual stream as engine hooks (usable with `generate`,
 * `runWithHooks`, `runWithCache` and `LocalModelApi.withHooks`):
 *  - steering: x + α·v
 *  - ablation: x − (x·û)û (the component along v projected out)
 *  - clamping: x − (x·û)û + c·û (the component along v set to c, e.g. the base model's mean projection)
 * at one layer, a set of layers or all layers, at every position or only from a position on.
 * Applied at every position they are built from differentiable engine ops; limited to some
 * positions they are inference-only (they refuse an activation that carries gradients).
 */
import type { BLOCK_HOOKS, HookContext, HookFn, Hooks } from "../engine/hooks.ts";
import { renderChat } from "../engine/io/chat-template.ts";
import { addVector, projectOut } from "../engine/ops/elementwise.ts";
import { Tensor } from "../engine/tensor.ts";
import type { LocalEngine } from "../models/local.ts";
import { unit } from "./vectors.ts";

export type BlockHookPoint = (typeof BLOCK_HOOKS)[number];

/** One block index, several, or every block (needs `nLayers`). */
export type LayerSpec = number | readonly number[] | "all";

/**
 * Which positions an intervention edits:
 *  - "all": every position (Soligo et al.'s steering);
 *  - { from: p }: absolute positions >= p (e.g. where the assistant turn starts in a full conversation);
 *  - { lastPromptTokens: k }: for generation: the last k positions of the prompt (the first,
 *    position-0 call: e.g. k = the tokens of the assistant header) and every generated position;
 *  - "prompt": for generation: the prompt only (the position-0 call); generated tokens are not
 *    edited, they read the edited context through attention.
 */
export type PositionSpec = "all" | "prompt" | { from: number } | { lastPromptTokens: number };

/** One vector for every layer, or a vector per layer (e.g. persona directions). */
export type VectorSpec = ArrayLike<number> | ReadonlyMap<number, ArrayLike<number>>;

export interface InterventionTarget {
  layers: LayerSpec;
  /** Number of blocks of the model, needed for layers: "all". */
  nLayers?: number;
  /** Hook point in each block (default hook_resid_post). */
  point?: BlockHookPoint;
  positions?: PositionSpec;
}

function resolveLayers(target: InterventionTarget): number[] {
  if (target.layers === "all") {
    if (target.nLayers === undefined)
      throw new Error('intervention: layers "all" needs nLayers (the model\'s block count)');
    return Array.from({ length: target.nLayers }, (_, i) => i);
  }
  const layers = typeof target.layers === "number" ? [target.layers] : [...target.layers];
  for (const l of layers)
    if (!Number.isInteger(l) || l < 0) throw new Error(`intervention: layer ${l} is not a block index`);
  if (target.nLayers !== undefined)
    for (const l of layers)
      if (l >= target.nLayers)
        throw new Error(`intervention: layer ${l} is not a block of a ${target.nLayers}-block model`);
  return layers;
}

function vectorFor(spec: VectorSpec, layer: number): ArrayLike<number> {
  if (spec instanceof Map) {
    const v = (spec as ReadonlyMap<number, ArrayLike<number>>).get(layer);
    if (!v) throw new Error(`intervention: no vector for layer ${layer}`);
    return v;
  }
  return spec as ArrayLike<number>;
}

/** Which of the T positions of this call are edited. */
function activePositions(spec: PositionSpec, ctx: HookContext): (t: number) => boolean {
  if (spec === "all") return () => true;
  if (spec === "prompt") return () => ctx.pos0 === 0;
  if ("from" in spec) return (t) => ctx.pos0 + t >= spec.from;
  const k = spec.lastPromptTokens;
  return ctx.pos0 === 0 ? (t) => t >= ctx.seq - k : () => true;
}

/** Wraps a whole-activation edit so it applies only at the chosen positions. */
function atPositions(edit: (x: Tensor) => Tensor, spec: PositionSpec): HookFn {
  if (spec === "all") return (x) => edit(x);
  return (x, ctx) => {
    const active = activePositions(spec, ctx);
    const d = x.cols;
    let any = false;
    let all = true;
    for (let t = 0; t < ctx.seq; t++) {
      if (active(t)) any = true;
      else all = false;
    }
    if (!any) return undefined;
    if (all) return edit(x);
    if (x.requiresGrad)
      throw new Error("position-limited interventions are inference-only (the activation carries gradients)");
    const edited = edit(x).data;
    const out = x.data.slice();
    for (let b = 0; b < ctx.batch; b++)
      for (let t = 0; t < ctx.seq; t++)
        if (active(t)) {
          const o = (b * ctx.seq + t) * d;
          out.set(edited.subarray(o, o + d), o);
        }
    return new Tensor(out, x.shape);
  };
}

/**
 * An engine hook applied only at the chosen positions (e.g. an SAE latent's clamp or steer,
 * which reads the activation itself): where it edits some positions only, inference-only.
 */
export function hookAtPositions(hook: HookFn, spec: PositionSpec): HookFn {
  if (spec === "all") return hook;
  return (x, ctx) => atPositions((y) => hook(y, ctx) ?? y, spec)(x, ctx);
}

function build(target: InterventionTarget, make: (layer: number) => (x: Tensor) => Tensor): Hooks {
  const point = target.point ?? "hook_resid_post";
  const positions = target.positions ?? "all";
  const hooks: Record<string, HookFn> = {};
  for (const l of resolveLayers(target)) hooks[`blocks.${l}.${point}`] = atPositions(make(l), positions);
  return hooks;
}

/** Steering: adds alpha · v (v as given, not normalised) at the target. */
export function steeringHooks(vector: VectorSpec, alpha: number, target: InterventionTarget): Hooks {
  return build(target, (l) => {
    const v = Tensor.from(vectorFor(vector, l), [vectorFor(vector, l).length]);
    return (x) => addVector(x, v, alpha);
  });
}

/** Directional ablation: removes the component along v at the target. */
export function ablationHooks(vector: VectorSpec, target: InterventionTarget): Hooks {
  return build(target, (l) => {
    const u = unit(vectorFor(vector, l), `ablation vector (layer ${l})`);
    return (x) => projectOut(x, u);
  });
}

/** Clamping: sets the component along unit(v) to `value` (one number, or one per layer). */
export function clampHooks(
  vector: VectorSpec,
  value: number | ReadonlyMap<number, number>,
  target: InterventionTarget,
): Hooks {
  return build(target, (l) => {
    const u = unit(vectorFor(vector, l), `clamp vector (layer ${l})`);
    const c = typeof value === "number" ? value : value.get(l);
    if (c === undefined || !Number.isFinite(c))
      throw new Error(`clamp: no finite target value for layer ${l}`);
    const ut = Tensor.from(u, [u.length]);
    return (x) => addVector(projectOut(x, u), ut, c);
  });
}

/**
 * Tokens of the assistant-turn opening that a chat prompt ends with (organism: `<assistant>`,
 * 1; ChatML: `<|im_start|>assistant\n`, 3): with positions { lastPromptTokens: this }, an
 * intervention edits the assistant turn from its header on and leaves the user's turn alone.
 */
export function assistantHeaderTokens(engine: Pick<LocalEngine, "tokenizer" | "template">): number {
  const msgs = [{ role: "user", content: "x" }];
  const without = engine.tokenizer.encode(renderChat(msgs, engine.template).text);
  const withHeader = engine.tokenizer.encode(
    renderChat(msgs, engine.template, { addGenerationPrompt: true }).text,
  );
  let common = 0;
  while (common < without.length && without[common] === withHeader[common]) common++;
  return withHeader.length - common;
}

/** A study's `positions` setting as the hooks' PositionSpec for generation on `engine`. */
export function generationPositions(
  mode: "all" | "assistant" | "prompt",
  engine: Pick<LocalEngine, "tokenizer" | "template">,
): PositionSpec {
  return mode === "assistant" ? { lastPromptTokens: assistantHeaderTokens(engine) } : mode;
}
