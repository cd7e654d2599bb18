import { needsGrad, record } from "../autograd.ts";
import { Tensor } from "../tensor.ts";

/** Row lookup: out[n] = W[ids[n]]; the backward scatter-adds into W's gradient. */
export function embedding(ids: Int32Array, w: Tensor, outShape: readonly number[]): Tensor {
  const [vocab, d] = w.shape;
  const grad = needsGrad(w);
  const out = new Tensor(new Float32Array(ids.length * d), outShape, grad);
  const y = out.data;
  const wd = w.data;
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < vocab))
      throw new Error(`token id ${id} at position ${n} is outside the vocabulary (size ${vocab})`);
    y.set(wd.subarray(id * d, id * d + d), n * d);
  }
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const dw = w.ensureGrad();
      for (let n = 0; n < ids.length; n++) {
        const o = ids[n] * d;
        const s = n * d;
        for (let j = 0; j < d; j++) dw[o + j] += dy[s + j];
      }
    });
  }
  return out;
}
