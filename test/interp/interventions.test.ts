import { describe, expect, it } from "vitest";
import { generate } from "../../src/engine/generate.ts";
import { type HookContext, type Hooks, mergeHooks } from "../../src/engine/hooks.ts";
import type { Tensor } from "../../src/engine/tensor.ts";
import {
  ablationHooks,
  assistantHeaderTokens,
  clampHooks,
  dot,
  randomDirection,
  steeringHooks,
  unit,
} from "../../src/interp/index.ts";
import { tinyEngine } from "./tiny-engine.ts";

const { model } = tinyEngine();
const d = model.shape.hiddenSize;
const ids = [
  [3, 5, 7, 9, 11, 4],
  [6, 8, 10, 12, 14, 2],
];
const T = ids[0].length;
const v = randomDirection(d, 1, 7);
const resid = (l: number) => `blocks.${l}.hook_resid_post`;

/** The residual stream after block l (what the readers see after the hooks' edits). */
function read(hooks: Hooks | undefined, l: number): Float32Array {
  return model.runWithCache(ids, [resid(l)], { hooks }).cache.get(resid(l))!.data;
}

/** Projection of every row of an activation on unit(v). */
function projections(act: Float32Array, dir: ArrayLike<number>): number[] {
  const u = unit(dir);
  const out: number[] = [];
  for (let r = 0; r < act.length / d; r++) out.push(dot(act.subarray(r * d, (r + 1) * d), u));
  return out;
}

describe("interventions", () => {
  it("steering adds exactly alpha·v to the residual stream at the hooked layer", () => {
    for (const layer of [0, 1]) {
      const base = read(undefined, layer);
      const steered = read(steeringHooks(v, 2.5, { layers: layer }), layer);
      for (let i = 0; i < base.length; i++) expect(steered[i] - base[i]).toBeCloseTo(2.5 * v[i % d], 5);
    }
    // Layer 1 only: layer 0 is untouched.
    expect(read(steeringHooks(v, 2.5, { layers: 1 }), 0)).toEqual(read(undefined, 0));
  });

  it("steering at all layers with a vector per layer hooks every block", () => {
    const w = randomDirection(d, 1, 8);
    const hooks = steeringHooks(
      new Map([
        [0, v],
        [1, w],
      ]),
      1,
      { layers: "all", nLayers: 2 },
    );
    expect(Object.keys(hooks).sort()).toEqual([resid(0), resid(1)]);
    const base0 = read(undefined, 0);
    const s0 = read(hooks, 0);
    for (let i = 0; i < base0.length; i++) expect(s0[i] - base0[i]).toBeCloseTo(v[i % d], 5);
    expect(() => steeringHooks(v, 1, { layers: "all" })).toThrow(/nLayers/);
    expect(() => steeringHooks(new Map([[0, v]]), 1, { layers: [0, 1] })).toThrow(/no vector for layer 1/);
    expect(() => steeringHooks(v, 1, { layers: 2, nLayers: 2 })).toThrow(/layer 2/);
  });

  it("steering from a position on leaves earlier positions exactly unchanged", () => {
    const base = read(undefined, 0);
    const steered = read(steeringHooks(v, 3, { layers: 0, positions: { from: 4 } }), 0);
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < T; t++)
        for (let j = 0; j < d; j++) {
          const i = (b * T + t) * d + j;
          if (t < 4) expect(steered[i]).toBe(base[i]);
          else expect(steered[i] - base[i]).toBeCloseTo(3 * v[j], 5);
        }
  });

  it("ablation leaves a zero component along v; clamping sets it to the target", () => {
    for (const layers of [0, [0, 1], "all"] as const) {
      const ablated = read(ablationHooks(v, { layers, nLayers: 2 }), 0);
      for (const p of projections(ablated, v)) expect(Math.abs(p)).toBeLessThan(1e-5);
      const clamped = read(clampHooks(v, -1.75, { layers, nLayers: 2 }), 0);
      for (const p of projections(clamped, v)) expect(p).toBeCloseTo(-1.75, 5);
    }
    // The rest of the activation is untouched: ablated + (x·û)û = x.
    const base = read(undefined, 1);
    const ablated = read(ablationHooks(v, { layers: 1 }), 1);
    const u = unit(v);
    const pb = projections(base, v);
    for (let i = 0; i < base.length; i++)
      expect(ablated[i] + pb[Math.floor(i / d)] * u[i % d]).toBeCloseTo(base[i], 5);
    expect(() => ablationHooks(new Float32Array(d), { layers: 0 })).toThrow(/zero/);
    expect(() => clampHooks(v, new Map([[0, 1]]), { layers: 1 })).toThrow(/layer 1/);
  });

  it("lastPromptTokens edits the end of the prompt and every generated position (fast decode path too)", () => {
    // Readers before and after the steering hook on the same point see the edit itself.
    const before: number[][] = [];
    const after: { pos0: number; seq: number; proj: number[] }[] = [];
    const hooks = mergeHooks(
      { [resid(0)]: (act: Tensor) => void before.push(projections(act.data, v)) },
      steeringHooks(v, 5, { layers: 0, positions: { lastPromptTokens: 2 } }),
      {
        [resid(0)]: (act: Tensor, ctx: HookContext) =>
          void after.push({ pos0: ctx.pos0, seq: ctx.seq, proj: projections(act.data, v) }),
      },
    );
    for (const n of [1, 2]) {
      before.length = 0;
      after.length = 0;
      const out = generate(model, [3, 5, 7, 9], { maxTokens: 4, n, seed: 1, temperature: 0, hooks });
      expect(out[0].tokens).toHaveLength(4);
      expect(after[0]).toMatchObject({ pos0: 0, seq: 4 });
      // Prefill: the first two prompt positions unchanged, the last two shifted by 5 along û.
      for (let t = 0; t < 4; t++) expect(after[0].proj[t] - before[0][t]).toBeCloseTo(t < 2 ? 0 : 5, 4);
      expect(after.length).toBe(4);
      for (let k = 1; k < after.length; k++) {
        expect(after[k].pos0).toBe(3 + k);
        expect(after[k].proj).toHaveLength(n);
        for (let r = 0; r < n; r++) expect(after[k].proj[r] - before[k][r]).toBeCloseTo(5, 4);
      }
    }
  });

  it('"prompt" edits every prompt position and no generated one', () => {
    const before: number[][] = [];
    const after: { pos0: number; proj: number[] }[] = [];
    const hooks = mergeHooks(
      { [resid(0)]: (act: Tensor) => void before.push(projections(act.data, v)) },
      steeringHooks(v, 5, { layers: 0, positions: "prompt" }),
      {
        [resid(0)]: (act: Tensor, ctx: HookContext) =>
          void after.push({ pos0: ctx.pos0, proj: projections(act.data, v) }),
      },
    );
    const steered = generate(model, [3, 5, 7, 9], { maxTokens: 4, seed: 1, temperature: 0, hooks });
    expect(after[0].pos0).toBe(0);
    for (let t = 0; t < 4; t++) expect(after[0].proj[t] - before[0][t]).toBeCloseTo(5, 4);
    expect(after.length).toBe(4);
    for (let k = 1; k < after.length; k++) expect(after[k].proj[0] - before[k][0]).toBeCloseTo(0, 6);
    // The generated tokens still read the edited prompt: the answer differs from the unsteered one
    // wherever the edit changes the greedy choice (here it does, at alpha 5 on a tiny model).
    const plain = generate(model, [3, 5, 7, 9], { maxTokens: 4, seed: 1, temperature: 0 });
    expect(steered[0].tokens).not.toEqual(plain[0].tokens);
  });
});

describe("assistantHeaderTokens", () => {
  it("counts the assistant-turn opening of the organism template (1) and ChatML (3)", () => {
    const e = tinyEngine();
    expect(assistantHeaderTokens(e)).toBe(1);
    // ChatML through a stand-in tokenizer that splits specials, words and newlines (as BPE would here).
    const pieces = (text: string) => text.match(/<\|[a-z_]+\|>|[a-z]+|\n/g) ?? [];
    const vocab = new Map<string, number>();
    const chatml = {
      encode: (text: string) => pieces(text).map((p) => vocab.get(p) ?? vocab.set(p, vocab.size).size - 1),
    };
    expect(chatml.encode("<|im_start|>assistant\n")).toHaveLength(3);
    expect(assistantHeaderTokens({ tokenizer: chatml as never, template: { kind: "chatml" } })).toBe(3);
  });
});
