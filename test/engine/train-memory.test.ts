import { describe, expect, it } from "vitest";
import { backward, clearTape, tapeLength } from "../../src/engine/autograd.ts";
import { LoraAdapter } from "../../src/engine/lora.ts";
import { crossEntropy, linearCrossEntropy } from "../../src/engine/ops/cross-entropy.ts";
import { add, scale, swiglu } from "../../src/engine/ops/elementwise.ts";
import { linear } from "../../src/engine/ops/matmul.ts";
import { Rng } from "../../src/engine/rng.ts";
import { Tensor } from "../../src/engine/tensor.ts";

function random(shape: number[], rng: Rng, requiresGrad: boolean, std = 1): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
  return t;
}

/** Bit-for-bit equality (toEqual walks millions of elements slowly). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Loss and dx of the unfused head + loss, and of the fused one with `chunkRows` (and `gradSeed`). */
function both(
  N: number,
  V: number,
  d: number,
  chunkRows: number | undefined,
  seed: number,
  gradSeed?: number,
) {
  const rng = new Rng(seed);
  const xData = random([N, d], rng, false).data;
  const w = random([V, d], rng, false, 0.5);
  const targets = Int32Array.from({ length: N }, (_, i) => (i % 7 === 3 ? -100 : rng.int(V)));
  const mask = Float32Array.from({ length: N }, (_, i) => (i % 5 === 1 ? 0 : 1 + (i % 3)));
  const run = (fused: boolean) => {
    const x = new Tensor(xData.slice(), [N, d], true);
    const loss = fused
      ? linearCrossEntropy(x, w, targets, mask, { chunkRows, gradSeed })
      : crossEntropy(linear(x, w), targets, mask);
    backward(loss, Float32Array.of(0.5));
    return { loss: loss.item(), dx: x.grad! };
  };
  return { plain: run(false), fused: run(true) };
}

describe("linearCrossEntropy (the head and the loss fused, logits in row chunks)", () => {
  it("gives the unfused pair's loss and dx bit for bit, whatever the chunking", () => {
    // 64×3000×64 is big enough that the unfused head splits across threads; the chunks
    // (a 5-row tail, tails of 1-3 rows merged into the chunk before) mostly do not.
    for (const [N, chunk] of [
      [64, 8],
      [37, 8],
      [35, 16],
      [64, undefined],
      [3, 2],
    ] as const) {
      // gradSeed: dx made in the forward (0.5 is the seed the backward gets) or, when the
      // backward's seed differs (0.25), made again there.
      for (const gradSeed of [undefined, 0.5, 0.25]) {
        const { plain, fused } = both(N, 3000, 64, chunk, N, gradSeed);
        expect(fused.loss).toBe(plain.loss);
        expect(fused.dx).toEqual(plain.dx);
      }
    }
  });

  it("falls back to the unfused pair when the head trains", () => {
    const rng = new Rng(3);
    const x = random([8, 16], rng, true);
    const w = random([50, 16], rng, true);
    const targets = Int32Array.from({ length: 8 }, () => rng.int(50));
    const fused = linearCrossEntropy(x, w, targets, null, { chunkRows: 2 });
    backward(fused);
    const dw = w.grad!.slice();
    w.grad = null;
    const plain = crossEntropy(linear(x, w), targets);
    backward(plain);
    expect(fused.item()).toBe(plain.item());
    expect(w.grad).toEqual(dw);
  });

  it("an all-masked batch has loss 0 and records nothing", () => {
    clearTape();
    const rng = new Rng(4);
    const x = random([4, 8], rng, true);
    const loss = linearCrossEntropy(x, random([20, 8], rng, false), Int32Array.of(-100, -100, -100, -100));
    expect(loss.item()).toBe(0);
    expect(tapeLength()).toBe(0);
  });
});

describe("memory-lean ops give the same floats", () => {
  it("swiglu recomputing its sigmoid (large) equals swiglu keeping it (small pieces)", () => {
    const rng = new Rng(5);
    const n = (1 << 22) + 8;
    const g = random([n], rng, true, 3);
    const u = random([n], rng, true);
    const dy = random([n], rng, false).data;
    backward(swiglu(g, u), dy);
    const half = n / 2;
    for (const [a, b] of [
      [0, half],
      [half, n],
    ]) {
      const gp = new Tensor(g.data.slice(a, b), [b - a], true);
      const up = new Tensor(u.data.slice(a, b), [b - a], true);
      backward(swiglu(gp, up), dy.slice(a, b));
      expect(sameBits(gp.grad!, g.grad!.subarray(a, b))).toBe(true);
      expect(sameBits(up.grad!, u.grad!.subarray(a, b))).toBe(true);
    }
  });

  it("LoRA apply (delta summed into the base's buffer) equals add(base, scale(B·A·x))", () => {
    const rng = new Rng(6);
    const x0 = random([12, 16], rng, false).data;
    const w = random([24, 16], rng, false, 0.3);
    const dy = random([12, 24], rng, false).data;
    const run = (fused: boolean, xTrains: boolean) => {
      const ad = new LoraAdapter(random([4, 16], new Rng(7), true), random([24, 4], new Rng(8), true), 2.5);
      const x = new Tensor(x0.slice(), [12, 16], xTrains);
      const base = linear(x, w);
      const y = fused ? ad.apply(base, x, true, null) : add(base, scale(linear(linear(x, ad.A), ad.B), 2.5));
      const out = y.data.slice();
      backward(y, dy);
      return { out, dA: ad.A.grad, dB: ad.B.grad, dx: x.grad };
    };
    for (const xTrains of [false, true]) expect(run(true, xTrains)).toEqual(run(false, xTrains));
  });
});
