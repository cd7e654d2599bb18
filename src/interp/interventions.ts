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
import {
  type EditPositions,
  type HookEdit,
  type HookEditInput,
  HookEditSchema,
} from "../models/hook-edits.ts";
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

/**
 * The engine's position rule and the wire's (src/models/hook-edits.ts) are one: the engine
 * runs a prompt in one call at position 0, so "that call" is "positions < the prompt's length".
 */
export function toEditPositions(spec: PositionSpec): EditPositions {
  if (spec === "all" || spec === "prompt") return spec;
  if ("from" in spec) return { from: spec.from };
  return { last_prompt_tokens: spec.lastPromptTokens };
}

export function fromEditPositions(spec: EditPositions): PositionSpec {
  if (spec === "all" || spec === "prompt") return spec;
  if ("from" in spec) return { from: spec.from };
  return { lastPromptTokens: spec.last_prompt_tokens };
}

function edits(
  target: InterventionTarget,
  make: (layer: number, hook: string, positions: EditPositions) => HookEdit,
): HookEdit[] {
  const point = target.point ?? "hook_resid_post";
  const positions = toEditPositions(target.positions ?? "all");
  return resolveLayers(target).map((l) => make(l, `blocks.${l}.${point}`, positions));
}

/** Steering as data: alpha · v (v as given, not normalised) added at the target. */
export function steeringEdits(vector: VectorSpec, alpha: number, target: InterventionTarget): HookEdit[] {
  return edits(target, (l, hook, positions) => ({
    op: "add",
    hook,
    vector: Array.from(vectorFor(vector, l)),
    alpha,
    positions,
  }));
}

/** Directional ablation as data: the component along v removed at the target. */
export function ablationEdits(vector: VectorSpec, target: InterventionTarget): HookEdit[] {
  return edits(target, (l, hook, positions) => ({
    op: "project_out",
    hook,
    vector: Array.from(vectorFor(vector, l)),
    positions,
  }));
}

/** Clamping as data: the component along unit(v) set to `value` (one number, or one per layer). */
export function clampEdits(
  vector: VectorSpec,
  value: number | ReadonlyMap<number, number>,
  target: InterventionTarget,
): HookEdit[] {
  return edits(target, (l, hook, positions) => {
    const c = typeof value === "number" ? value : value.get(l);
    if (c === undefined || !Number.isFinite(c))
      throw new Error(`clamp: no finite target value for layer ${l}`);
    return { op: "clamp", hook, vector: Array.from(vectorFor(vector, l)), value: c, positions };
  });
}

/**
 * Hook edits as engine hooks: the one place the embedded engine learns what an `add`,
 * `project_out` or `clamp` edit does (the HF worker implements the same in PyTorch).
 * Several edits on one hook run in order.
 */
export function editsToHooks(list: readonly HookEditInput[]): Hooks {
  const hooks: Record<string, HookFn[]> = {};
  list.forEach((raw, i) => {
    const parsed = HookEditSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`edits[${i}].${issue.path.join(".")}: ${issue.message}`);
    }
    const e = parsed.data;
    let edit: (x: Tensor) => Tensor;
    if (e.op === "add") {
      const v = Tensor.from(e.vector, [e.vector.length]);
      edit = (x) => addVector(x, v, e.alpha);
    } else {
      const u = unit(e.vector, `${e.op} vector (${e.hook})`);
      if (e.op === "project_out") edit = (x) => projectOut(x, u);
      else {
        const ut = Tensor.from(u, [u.length]);
        edit = (x) => addVector(projectOut(x, u), ut, e.value);
      }
    }
    hooks[e.hook] = [...(hooks[e.hook] ?? []), atPositions(edit, fromEditPositions(e.positions))];
  });
  return hooks;
}

/** Steering: adds alpha · v (v as given, not normalised) at the target. */
export function steeringHooks(vector: VectorSpec, alpha: number, target: InterventionTarget): Hooks {
  return editsToHooks(steeringEdits(vector, alpha, target));
}

/** Directional ablation: removes the component along v at the target. */
export function ablationHooks(vector: VectorSpec, target: InterventionTarget): Hooks {
  return editsToHooks(ablationEdits(vector, target));
}

/** Clamping: sets the component along unit(v) to `value` (one number, or one per layer). */
export function clampHooks(
  vector: VectorSpec,
  value: number | ReadonlyMap<number, number>,
  target: InterventionTarget,
): Hooks {
  return editsToHooks(clampEdits(vector, value, target));
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
