import { describe, expect, it } from "vitest";
import { backward, noGrad } from "../../src/engine/autograd.ts";
import { KvCache } from "../../src/engine/kv-cache.ts";
import { attention } from "../../src/engine/ops/attention.ts";
import { crossEntropy } from "../../src/engine/ops/cross-entropy.ts";
import {
  add,
  addVector,
  dropout,
  mul,
  projectOut,
  scale,
  sum,
  swiglu,
} from "../../src/engine/ops/elementwise.ts";
import { embedding } from "../../src/engine/ops/embedding.ts";
import { linear, matmul } from "../../src/engine/ops/matmul.ts";
import { rmsnorm } from "../../src/engine/ops/rmsnorm.ts";
import { RopeTable, rope } from "../../src/engine/ops/rope.ts";
import { lastPosition } from "../../src/engine/ops/select.ts";
import { Rng } from "../../src/engine/rng.ts";
import { Tensor } from "../../src/engine/tensor.ts";
import { gradCheck, randn } from "./gradcheck.ts";

const TOL = 3e-3;

describe("op gradients match finite differences", () => {
  const rng = new Rng(1);

  it("matmul, every transpose variant", () => {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const a = randn(ta ? [5, 3] : [3, 5], rng);
      const b = randn(tb ? [4, 5] : [5, 4], rng);
      expect(gradCheck(() => matmul(a, b, ta, tb), [a, b])).toBeLessThan(TOL);
    }
  });

  it("matmul forward equals the naive product", () => {
    const a = randn([3, 5], rng, 1, false);
    const b = randn([5, 4], rng, 1, false);
    const c = matmul(a, b);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 4; j++) {
        let s = 0;
        for (let p = 0; p < 5; p++) s += a.data[i * 5 + p] * b.data[p * 4 + j];
        expect(c.data[i * 4 + j]).toBeCloseTo(s, 5);
      }
  });

  it("linear with and without bias", () => {
    const x = randn([2, 3, 6], rng);
    const w = randn([4, 6], rng);
    const b = randn([4], rng);
    expect(gradCheck(() => linear(x, w, b), [x, w, b])).toBeLessThan(TOL);
    expect(gradCheck(() => linear(x, w), [x, w])).toBeLessThan(TOL);
  });

  it("add (same shape and broadcast), mul, scale, addVector", () => {
    const a = randn([3, 4], rng);
    const b = randn([3, 4], rng);
    const v = randn([4], rng);
    expect(gradCheck(() => add(a, b), [a, b])).toBeLessThan(TOL);
    expect(gradCheck(() => add(a, v), [a, v])).toBeLessThan(TOL);
    expect(gradCheck(() => mul(a, b), [a, b])).toBeLessThan(TOL);
    expect(gradCheck(() => scale(a, -1.7), [a])).toBeLessThan(TOL);
    expect(gradCheck(() => addVector(a, v, 0.5), [a, v])).toBeLessThan(TOL);
    expect(gradCheck(() => sum(a), [a])).toBeLessThan(TOL);
  });

  it("swiglu", () => {
    const g = randn([3, 8], rng, 2);
    const u = randn([3, 8], rng);
    expect(gradCheck(() => swiglu(g, u), [g, u])).toBeLessThan(TOL);
  });

  it("projectOut removes the direction and its gradient is the projection", () => {
    const x = randn([4, 6], rng);
    const dir = Array.from({ length: 6 }, () => rng.normal());
    expect(gradCheck(() => projectOut(x, dir), [x])).toBeLessThan(TOL);
    const y = noGrad(() => projectOut(x, dir));
    for (let r = 0; r < 4; r++) {
      let dot = 0;
      for (let j = 0; j < 6; j++) dot += y.data[r * 6 + j] * dir[j];
      expect(Math.abs(dot)).toBeLessThan(1e-5);
    }
  });

  it("dropout keeps expectation and routes gradients through kept units", () => {
    const x = randn([4, 8], rng);
    const seed = 5;
    expect(gradCheck(() => dropout(x, 0.3, new Rng(seed)), [x])).toBeLessThan(TOL);
  });

  it("rmsnorm", () => {
    const x = randn([2, 3, 8], rng);
    const w = randn([8], rng);
    expect(gradCheck(() => rmsnorm(x, w, 1e-6), [x, w])).toBeLessThan(TOL);
  });

  it("embedding", () => {
    const w = randn([10, 4], rng);
    const ids = Int32Array.from([3, 1, 3, 9, 0]);
    expect(gradCheck(() => embedding(ids, w, [5, 4]), [w])).toBeLessThan(TOL);
    expect(() => embedding(Int32Array.from([10]), w, [1, 4])).toThrow(/outside the vocabulary/);
  });

  it("rope (HF rotate-half) preserves norms and has the inverse rotation as backward", () => {
    const table = new RopeTable(8, 10000);
    const x = randn([2, 3, 2 * 8], rng);
    expect(gradCheck(() => rope(x, table, 3, 2, 4), [x])).toBeLessThan(TOL);
    const y = noGrad(() => rope(x, table, 3, 2, 0));
    // Position 0 is the identity.
    for (let i = 0; i < 16; i++) expect(y.data[i]).toBeCloseTo(x.data[i], 6);
    // Explicit HF formula at position 2, head 1, pair i=1: out[i] = x[i]cos − x[i+4]sin.
    const p = 2;
    const f = 1 / 10000 ** (2 / 8);
    const o = (0 * 3 + p) * 16 + 8;
    expect(y.data[o + 1]).toBeCloseTo(x.data[o + 1] * Math.cos(p * f) - x.data[o + 5] * Math.sin(p * f), 5);
    expect(y.data[o + 5]).toBeCloseTo(x.data[o + 5] * Math.cos(p * f) + x.data[o + 1] * Math.sin(p * f), 5);
  });

  it("causal attention with GQA", () => {
    const B = 2;
    const T = 4;
    const H = 4;
    const KH = 2;
    const D = 3;
    const q = randn([B, T, H * D], rng);
    const k = randn([B, T, KH * D], rng);
    const v = randn([B, T, KH * D], rng);
    const shape = { batch: B, seq: T, heads: H, kvHeads: KH, headDim: D };
    expect(gradCheck(() => attention(q, k, v, shape), [q, k, v])).toBeLessThan(TOL);
    // The memory-saving path recomputes the probabilities in the backward.
    expect(gradCheck(() => attention(q, k, v, { ...shape, recompute: true }), [q, k, v])).toBeLessThan(TOL);
  });

  it("attention equals a naive reference, and the KV-cache path equals the full pass", () => {
    const B = 1;
    const T = 5;
    const H = 2;
    const KH = 1;
    const D = 4;
    const q = randn([B, T, H * D], rng, 1, false);
    const k = randn([B, T, KH * D], rng, 1, false);
    const v = randn([B, T, KH * D], rng, 1, false);
    const full = attention(q, k, v, { batch: B, seq: T, heads: H, kvHeads: KH, headDim: D });
    // Naive reference for query 3, head 1.
    const i = 3;
    const h = 1;
    const sc: number[] = [];
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += q.data[i * H * D + h * D + d] * k.data[j * D + d];
      sc.push(s / Math.sqrt(D));
    }
    const mx = Math.max(...sc);
    const e = sc.map((s) => Math.exp(s - mx));
    const z = e.reduce((a, b) => a + b, 0);
    for (let d = 0; d < D; d++) {
      let o = 0;
      for (let j = 0; j <= i; j++) o += (e[j] / z) * v.data[j * D + d];
      expect(full.data[i * H * D + h * D + d]).toBeCloseTo(o, 5);
    }
    // Feed 2 positions, then 3, through a cache that must grow.
    const cache = new KvCache(1, B, KH, D, 2);
    const parts: Float32Array[] = [];
    noGrad(() => {
      for (const [t0, t1] of [
        [0, 2],
        [2, 5],
      ]) {
        const n = t1 - t0;
        const sl = (x: Tensor, c: number) => new Tensor(x.data.slice(t0 * c, t1 * c), [1, n, c]);
        const o = attention(
          sl(q, H * D),
          sl(k, KH * D),
          sl(v, KH * D),
          { batch: 1, seq: n, heads: H, kvHeads: KH, headDim: D },
          { cache, layer: 0 },
        );
        cache.length += n;
        parts.push(o.data);
      }
    });
    const joined = new Float32Array(T * H * D);
    joined.set(parts[0], 0);
    joined.set(parts[1], 2 * H * D);
    for (let j = 0; j < joined.length; j++) expect(joined[j]).toBeCloseTo(full.data[j], 5);
  });

  it("cross-entropy with a loss mask and ignore index", () => {
    const logits = randn([5, 7], rng);
    const targets = Int32Array.from([1, -100, 6, 0, 3]);
    const mask = Float32Array.from([1, 1, 0, 1, 1]);
    expect(gradCheck(() => crossEntropy(logits, targets, mask), [logits])).toBeLessThan(TOL);
    // Value: mean NLL over rows 0, 3, 4.
    const l = noGrad(() => crossEntropy(logits, targets, mask)).item();
    let ref = 0;
    for (const [r, t] of [
      [0, 1],
      [3, 0],
      [4, 3],
    ]) {
      const row = Array.from(logits.data.subarray(r * 7, r * 7 + 7));
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      ref += lse - row[t];
    }
    expect(l).toBeCloseTo(ref / 3, 5);
  });

  it("lastPosition", () => {
    const x = randn([2, 3, 4], rng);
    expect(gradCheck(() => lastPosition(x, 2, 3), [x])).toBeLessThan(TOL);
    expect(Array.from(noGrad(() => lastPosition(x, 2, 3)).data.subarray(4, 8))).toEqual(
      Array.from(x.data.subarray(20, 24)),
    );
  });

  it("backward accumulates through a shared input used twice", () => {
    const a = randn([2, 2], rng);
    const y = add(mul(a, a), a);
    let s = 0;
    const R = new Float32Array(4).fill(1);
    backward(y, R);
    for (let i = 0; i < 4; i++) {
      expect(a.grad![i]).toBeCloseTo(2 * a.data[i] + 1, 5);
      s += a.grad![i];
    }
    expect(Number.isFinite(s)).toBe(true);
  });
});
