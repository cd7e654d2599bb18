import { describe, expect, it } from "vitest";
import { Rng } from "../../src/engine/rng.ts";
import {
  type ActivationDataset,
  cosine,
  cosineAcrossModels,
  meanDifference,
  meanProjection,
  norm,
  PersonaDirectionsSummarySchema,
  personaDirections,
  randomDirection,
  randomLike,
  splitPersonaSets,
  summarizeDirections,
} from "../../src/interp/index.ts";

function noise(n: number, d: number, rng: Rng): Float32Array[] {
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => rng.normal()));
}

describe("persona sets", () => {
  it("keeps coherent > 50, splits aligned > 70 / aligned <= 30, and subsamples to equal counts", () => {
    const judgements = [
      { aligned: 90, coherent: 80 }, // 0 aligned
      { aligned: 10, coherent: 80 }, // 1 misaligned
      { aligned: 30, coherent: 60 }, // 2 misaligned (<= 30)
      { aligned: 70, coherent: 90 }, // 3 neither (needs > 70)
      { aligned: 5, coherent: 50 }, // 4 incoherent (needs > 50)
      { aligned: null, coherent: 90 }, // 5 judge refused
      { aligned: 95, coherent: 99 }, // 6 aligned
      { aligned: 0, coherent: 99 }, // 7 misaligned
      { label: "aligned" as const }, // 8 given label
    ];
    const s = splitPersonaSets(judgements, { seed: 3 });
    expect(s.availableAligned).toBe(3);
    expect(s.availableMisaligned).toBe(3);
    expect(s.aligned).toEqual([0, 6, 8]);
    expect(s.misaligned).toEqual([1, 2, 7]);
    const fewer = splitPersonaSets(judgements.slice(0, 8), { seed: 3 });
    expect(fewer.aligned).toEqual([0, 6]);
    expect(fewer.misaligned).toHaveLength(2);
    expect(splitPersonaSets(judgements.slice(0, 8), { seed: 3 })).toEqual(fewer);
    expect(() => splitPersonaSets([{ aligned: 90, coherent: 90 }])).toThrow(/0 misaligned/);
  });
});

describe("mean-difference direction", () => {
  it("recovers a planted direction (cosine > 0.99) and its size", () => {
    const d = 16;
    const rng = new Rng(1);
    const v = randomDirection(d, 3, 2);
    const aligned = noise(500, d, rng);
    const misaligned = noise(500, d, rng).map((r) => r.map((x, j) => x + v[j]));
    const dir = meanDifference(aligned, misaligned);
    expect(cosine(dir, v)).toBeGreaterThan(0.99);
    expect(norm(dir)).toBeGreaterThan(2.7);
    expect(norm(dir)).toBeLessThan(3.3);
  });

  it("per layer from an activation dataset and judgements, with norms and cosines", () => {
    const d = 16;
    const rng = new Rng(4);
    const v0 = randomDirection(d, 4, 10);
    const v1 = randomDirection(d, 6, 11);
    const n = 400;
    const judgements = Array.from({ length: n }, (_, i) =>
      i % 2 === 0 ? { aligned: 90, coherent: 90 } : { aligned: 5, coherent: 90 },
    );
    const base = noise(n, d, rng);
    const layer = (v: Float32Array) => base.map((r, i) => r.map((x, j) => x + (i % 2 ? v[j] : 0)));
    const ds: ActivationDataset = {
      position: "answer_mean",
      layers: [0, 1],
      dModel: d,
      rows: new Map([
        [0, layer(v0)],
        [1, layer(v1)],
      ]),
      answerTokens: new Array(n).fill(1),
    };
    const dirs = personaDirections(ds, judgements, { seed: 1 });
    expect(cosine(dirs.vectors.get(0)!, v0)).toBeGreaterThan(0.99);
    expect(cosine(dirs.vectors.get(1)!, v1)).toBeGreaterThan(0.99);
    const summary = summarizeDirections(dirs);
    expect(PersonaDirectionsSummarySchema.parse(summary)).toEqual(summary);
    expect(summary.count).toBe(200);
    expect(summary.layers[1].norm).toBeGreaterThan(5.5);
    expect(summary.layers[1].norm).toBeLessThan(6.5);
    expect(summary.cosineAcrossLayers[0][0]).toBeCloseTo(1, 6);
    expect(summary.cosineAcrossLayers[0][1]).toBeCloseTo(cosine(v0, v1), 1);
    const across = cosineAcrossModels(dirs.vectors, new Map([[1, v1]]));
    expect(across).toHaveLength(1);
    expect(across[0].cosine).toBeGreaterThan(0.99);
    expect(() => personaDirections(ds, judgements.slice(1))).toThrow(/399 judgements for 400 rows/);
  });

  it("mean projection on a direction is the mean of the dot products with its unit vector", () => {
    const rows = [Float32Array.from([1, 2]), Float32Array.from([3, 4])];
    expect(meanProjection(rows, [0, 5])).toBeCloseTo(3, 6);
  });
});

describe("random directions", () => {
  it("have the requested norm, depend only on the seed, and are near-orthogonal in high dimension", () => {
    const a = randomDirection(4096, 7.5, 1);
    const b = randomDirection(4096, 7.5, 2);
    expect(norm(a)).toBeCloseTo(7.5, 4);
    expect(randomDirection(4096, 7.5, 1)).toEqual(a);
    expect(Math.abs(cosine(a, b))).toBeLessThan(0.06);
    const like = randomLike(
      new Map([[3, Float32Array.from({ length: 4096 }, (_, i) => (i === 0 ? 2 : 0))]]),
      5,
    );
    expect(norm(like.get(3)!)).toBeCloseTo(2, 4);
    expect(Math.abs(like.get(3)![0]) / 2).toBeLessThan(0.06);
  });
});
