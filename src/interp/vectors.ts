/** Small dense-vector helpers shared by probes, directions and interventions (float64 sums). */
import { createHash } from "node:crypto";

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`dot: vectors have ${a.length} and ${b.length} elements`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** Cosine similarity; NaN when either vector is zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const d = norm(a) * norm(b);
  return d === 0 ? Number.NaN : dot(a, b) / d;
}

/** The vector scaled to unit length (throws on the zero vector, naming `what`). */
export function unit(a: ArrayLike<number>, what = "vector"): Float32Array {
  const n = norm(a);
  if (n === 0 || !Number.isFinite(n)) throw new Error(`${what} has zero (or non-finite) norm`);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] / n;
  return out;
}

/** Column means of equal-width rows. */
export function meanRows(rows: readonly ArrayLike<number>[], what = "rows"): Float64Array {
  if (rows.length === 0) throw new Error(`${what}: cannot average zero rows`);
  const d = rows[0].length;
  const m = new Float64Array(d);
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`${what}: row ${i} has ${r.length} values, row 0 has ${d}`);
    for (let j = 0; j < d; j++) m[j] += r[j];
  });
  for (let j = 0; j < d; j++) m[j] /= rows.length;
  return m;
}

/**
 * A sha256 of one vector or of vectors by layer (layers in order, each as float32 bytes): what
 * a cache identity records of a steering or ablation vector.
 */
export function vectorsHash(v: ArrayLike<number> | ReadonlyMap<number, ArrayLike<number>>): string {
  const h = createHash("sha256");
  const put = (x: ArrayLike<number>) => {
    const f = x instanceof Float32Array ? x : Float32Array.from(x);
    h.update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  };
  if (v instanceof Map) {
    const byLayer = v as ReadonlyMap<number, ArrayLike<number>>;
    for (const layer of [...byLayer.keys()].sort((a, b) => a - b)) {
      h.update(`layer ${layer}:`);
      put(byLayer.get(layer)!);
    }
  } else put(v as ArrayLike<number>);
  return h.digest("hex");
}
