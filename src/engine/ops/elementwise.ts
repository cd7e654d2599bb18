import { needsGrad, record } from "../autograd.ts";
import type { Rng } from "../rng.ts";
import { Tensor } from "../tensor.ts";

function sameSize(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) {
    throw new Error(`${op}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] differ`);
  }
}

function accumulate(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/**
 * Passes an output gradient on to an input. When the input has no gradient yet it takes
 * the buffer itself (no copy): by the time an op's backward runs, every consumer of its
 * output has already run, so nothing reads or writes that buffer again.
 */
function passGrad(t: Tensor, g: Float32Array): void {
  if (t.grad === null) t.grad = g;
  else accumulate(t.grad, g);
}

/** a + b, where b has a's size or is one row broadcast over a's rows (a bias / a steering vector). */
export function add(a: Tensor, b: Tensor): Tensor {
  const grad = needsGrad(a, b);
  const out = new Tensor(new Float32Array(a.size), a.shape, grad);
  const y = out.data;
  const ad = a.data;
  const bd = b.data;
  const broadcast = b.size !== a.size;
  if (broadcast && b.size !== a.cols) {
    throw new Error(`add: cannot broadcast [${b.shape.join(", ")}] over [${a.shape.join(", ")}]`);
  }
  if (!broadcast) {
    for (let i = 0; i < y.length; i++) y[i] = ad[i] + bd[i];
  } else {
    const c = a.cols;
    for (let r = 0; r < a.rows; r++) {
      const o = r * c;
      for (let j = 0; j < c; j++) y[o + j] = ad[o + j] + bd[j];
    }
  }
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      // a may take dy's buffer; b then needs its own copy.
      if (a.requiresGrad) passGrad(a, dy);
      if (b.requiresGrad) {
        const db = b.grad === null && !a.requiresGrad && !broadcast ? null : b.ensureGrad();
        if (db === null) b.grad = dy;
        else if (!broadcast) accumulate(db, dy);
        else {
          const c = a.cols;
          for (let r = 0; r < a.rows; r++) {
            const o = r * c;
            for (let j = 0; j < c; j++) db[j] += dy[o + j];
          }
        }
      }
    });
  }
  return out;
}

/** Elementwise a * b (same size). */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameSize("mul", a, b);
  const grad = needsGrad(a, b);
  const out = new Tensor(new Float32Array(a.size), a.shape, grad);
  const y = out.data;
  const ad = a.data;
  const bd = b.data;
  for (let i = 0; i < y.length; i++) y[i] = ad[i] * bd[i];
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      if (a.requiresGrad) {
        const da = a.ensureGrad();
        for (let i = 0; i < da.length; i++) da[i] += dy[i] * bd[i];
      }
      if (b.requiresGrad) {
        const db = b.ensureGrad();
        for (let i = 0; i < db.length; i++) db[i] += dy[i] * ad[i];
      }
    });
  }
  return out;
}

/** a * s for a constant s. */
export function scale(a: Tensor, s: number): Tensor {
  const grad = needsGrad(a);
  const out = new Tensor(new Float32Array(a.size), a.shape, grad);
  const y = out.data;
  const ad = a.data;
  for (let i = 0; i < y.length; i++) y[i] = ad[i] * s;
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const da = a.ensureGrad();
      for (let i = 0; i < da.length; i++) da[i] += dy[i] * s;
    });
  }
  return out;
}

/** Above this many elements (16 MB) swiglu recomputes its sigmoid in the backward. */
const SWIGLU_KEEP_MAX = 1 << 22;

/** SwiGLU: silu(gate) * up, fused so the MLP stores no intermediate. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  sameSize("swiglu", gate, up);
  const grad = needsGrad(gate, up);
  const out = new Tensor(new Float32Array(gate.size), gate.shape, grad);
  const y = out.data;
  const g = gate.data;
  const u = up.data;
  // The sigmoid is kept for the backward (one exp per element in all), unless it is large:
  // then the backward makes it again from the gate (the same float32 values), a layer's
  // worth of memory saved for one more exp per element.
  const sigKept = grad && y.length < SWIGLU_KEEP_MAX ? new Float32Array(y.length) : null;
  for (let i = 0; i < y.length; i++) {
    const x = g[i];
    const s = 1 / (1 + Math.exp(-x));
    if (sigKept) sigKept[i] = s;
    y[i] = x * s * u[i];
  }
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const sig = sigKept ?? new Float32Array(dy.length);
      if (sigKept === null) for (let i = 0; i < sig.length; i++) sig[i] = 1 / (1 + Math.exp(-g[i]));
      const dg = gate.requiresGrad ? gate.ensureGrad() : null;
      const du = up.requiresGrad ? up.ensureGrad() : null;
      if (dg && du) {
        for (let i = 0; i < dy.length; i++) {
          const x = g[i];
          const s = sig[i];
          const d = dy[i];
          du[i] += d * x * s;
          dg[i] += d * u[i] * s * (1 + x * (1 - s));
        }
      } else {
        for (let i = 0; i < dy.length; i++) {
          const x = g[i];
          const s = sig[i];
          if (du) du[i] += dy[i] * x * s;
          if (dg) dg[i] += dy[i] * u[i] * s * (1 + x * (1 - s));
        }
      }
    });
  }
  return out;
}

/** Inverted dropout with probability p (identity when p = 0). */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout probability must be < 1, got ${p}`);
  const keep = 1 / (1 - p);
  const mask = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < p ? 0 : keep;
  return mul(x, new Tensor(mask, x.shape));
}

/**
 * x + coef · v for every row (steering). Differentiable in x and v.
 */
export function addVector(x: Tensor, v: Tensor, coef = 1): Tensor {
  if (v.size !== x.cols) throw new Error(`addVector: vector has ${v.size} elements, rows have ${x.cols}`);
  return add(x, coef === 1 ? v : scale(v, coef));
}

/**
 * Removes the component along direction u from every row: x - (x·û)û (ablation).
 * The direction is normalised here; gradients flow to x (the direction is a constant).
 */
export function projectOut(x: Tensor, direction: ArrayLike<number>): Tensor {
  const c = x.cols;
  if (direction.length !== c)
    throw new Error(`projectOut: direction has ${direction.length} elements, rows have ${c}`);
  let norm = 0;
  for (let j = 0; j < c; j++) norm += direction[j] * direction[j];
  norm = Math.sqrt(norm);
  if (norm === 0) throw new Error("projectOut: direction is the zero vector");
  const u = new Float32Array(c);
  for (let j = 0; j < c; j++) u[j] = direction[j] / norm;
  const grad = needsGrad(x);
  const out = new Tensor(new Float32Array(x.size), x.shape, grad);
  const xd = x.data;
  const y = out.data;
  const rows = x.rows;
  for (let r = 0; r < rows; r++) {
    const o = r * c;
    let dot = 0;
    for (let j = 0; j < c; j++) dot += xd[o + j] * u[j];
    for (let j = 0; j < c; j++) y[o + j] = xd[o + j] - dot * u[j];
  }
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      // The projection is symmetric, so the backward is the same projection of dy.
      const dx = x.ensureGrad();
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        let dot = 0;
        for (let j = 0; j < c; j++) dot += dy[o + j] * u[j];
        for (let j = 0; j < c; j++) dx[o + j] += dy[o + j] - dot * u[j];
      }
    });
  }
  return out;
}

/** Sum of all elements (a scalar), mostly for tests and simple losses. */
export function sum(x: Tensor): Tensor {
  const grad = needsGrad(x);
  let s = 0;
  const xd = x.data;
  for (let i = 0; i < xd.length; i++) s += xd[i];
  const out = new Tensor(Float32Array.of(s), [1], grad);
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const dx = x.ensureGrad();
      const g = dy[0];
      for (let i = 0; i < dx.length; i++) dx[i] += g;
    });
  }
  return out;
}
