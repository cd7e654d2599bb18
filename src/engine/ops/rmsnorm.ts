import { needsGrad, record } from "../autograd.ts";
import { Tensor } from "../tensor.ts";

/**
 * RMSNorm as in HF Llama: y = x / sqrt(mean(x²) + eps) * w, row-wise over the last
 * dimension. Keeps 1/rms per row for the backward.
 */
export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const c = x.cols;
  if (w.size !== c) throw new Error(`rmsnorm: weight has ${w.size} elements, rows have ${c}`);
  const rows = x.rows;
  const grad = needsGrad(x, w);
  const out = new Tensor(new Float32Array(x.size), x.shape, grad);
  const xd = x.data;
  const wd = w.data;
  const y = out.data;
  const rstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * c;
    let ss = 0;
    for (let j = 0; j < c; j++) ss += xd[o + j] * xd[o + j];
    const s = 1 / Math.sqrt(ss / c + eps);
    rstd[r] = s;
    for (let j = 0; j < c; j++) y[o + j] = Math.fround(xd[o + j] * s) * wd[j];
  }
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      const dx = x.requiresGrad ? x.ensureGrad() : null;
      const dw = w.requiresGrad ? w.ensureGrad() : null;
      for (let r = 0; r < rows; r++) {
        const o = r * c;
        const s = rstd[r];
        // dx = s * (dy·w - xhat * mean(dy·w·xhat))
        let dot = 0;
        for (let j = 0; j < c; j++) dot += dy[o + j] * wd[j] * xd[o + j] * s;
        const m = dot / c;
        // One loop per case, so the common ones (dx only; both) carry no branch.
        if (dx && dw) {
          for (let j = 0; j < c; j++) {
            const xhat = xd[o + j] * s;
            dx[o + j] += s * (dy[o + j] * wd[j] - xhat * m);
            dw[j] += dy[o + j] * xhat;
          }
        } else if (dx) {
          for (let j = 0; j < c; j++) dx[o + j] += s * (dy[o + j] * wd[j] - xd[o + j] * s * m);
        } else if (dw) {
          for (let j = 0; j < c; j++) dw[j] += dy[o + j] * (xd[o + j] * s);
        }
      }
    });
  }
  return out;
}
