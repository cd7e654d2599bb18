import { needsGrad, record } from "../autograd.ts";
import { Tensor } from "../tensor.ts";

/** x [B, T, d] → its last position [B, 1, d] (the only logits generation needs). */
export function lastPosition(x: Tensor, B: number, T: number): Tensor {
  const d = x.cols;
  if (x.size !== B * T * d) throw new Error(`lastPosition: [${x.shape}] is not [${B}, ${T}, ${d}]`);
  const grad = needsGrad(x);
  const out = new Tensor(new Float32Array(B * d), [B, 1, d], grad);
  for (let b = 0; b < B; b++) out.data.set(x.data.subarray(((b + 1) * T - 1) * d, (b + 1) * T * d), b * d);
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const dx = x.ensureGrad();
      for (let b = 0; b < B; b++) {
        const o = ((b + 1) * T - 1) * d;
        for (let j = 0; j < d; j++) dx[o + j] += dy[b * d + j];
      }
    });
  }
  return out;
}
