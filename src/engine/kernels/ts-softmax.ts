/**
 * Row softmax of attention scores, in place: row i of x[rows×cols] becomes
 * softmax(scale · x[i, 0..len)) with len = min(cols, offset + i + 1), zeros after
 * (query i of a chunk starting at position `offset` sees keys 0..offset+i; pass
 * offset ≥ cols for no mask). The pure-TS version of softmax.wat, and its reference.
 */
export function tsCausalSoftmax(
  x: Float32Array,
  rows: number,
  cols: number,
  offset: number,
  scale: number,
): void {
  if (x.length < rows * cols)
    throw new Error(`causalSoftmax: x has ${x.length} elements, needs rows·cols = ${rows * cols}`);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const len = Math.max(0, Math.min(cols, offset + i + 1));
    let mx = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < len; j++) {
      const v = x[o + j] * scale;
      x[o + j] = v;
      if (v > mx) mx = v;
    }
    let s = 0;
    for (let j = 0; j < len; j++) {
      const e = Math.exp(x[o + j] - mx);
      x[o + j] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let j = 0; j < len; j++) x[o + j] *= inv;
    x.fill(0, o + len, o + cols);
  }
}
