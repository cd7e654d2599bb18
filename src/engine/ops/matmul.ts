import { needsGrad, record } from "../autograd.ts";
import { getKernels } from "../kernels/index.ts";
import type { MatmulKernels } from "../kernels/types.ts";
import { Tensor } from "../tensor.ts";

let kernels: MatmulKernels | null = null;
function k(): MatmulKernels {
  if (kernels === null) kernels = getKernels();
  return kernels;
}

/**
 * C = op(A) · op(B) for 2-D tensors, op = transpose when the flag is set. Forward and
 * backward are each one kernel call with the right transpose flags, so no strided copy
 * ever happens.
 */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`matmul needs 2-D tensors, got [${a.shape.join(", ")}] and [${b.shape.join(", ")}]`);
  }
  const m = transA ? a.shape[1] : a.shape[0];
  const kk = transA ? a.shape[0] : a.shape[1];
  const kb = transB ? b.shape[1] : b.shape[0];
  const n = transB ? b.shape[0] : b.shape[1];
  if (kk !== kb) throw new Error(`matmul inner dimensions differ: ${kk} vs ${kb}`);
  const grad = needsGrad(a, b);
  const out = new Tensor(new Float32Array(m * n), [m, n], grad);
  k().matmul(a.data, b.data, out.data, m, n, kk, transA, transB, false);
  if (grad) {
    record(() => {
      const dC = out.grad;
      if (dC === null) return;
      if (a.requiresGrad) {
        const dA = a.ensureGrad();
        // dop(A) = dC · op(B)^T; stored transposed when transA.
        if (!transA) k().matmul(dC, b.data, dA, m, kk, n, false, !transB, true);
        else k().matmul(b.data, dC, dA, kk, m, n, transB, true, true);
      }
      if (b.requiresGrad) {
        const dB = b.ensureGrad();
        // dop(B) = op(A)^T · dC; stored transposed when transB.
        if (!transB) k().matmul(a.data, dC, dB, kk, n, m, !transA, false, true);
        else k().matmul(dC, a.data, dB, n, kk, m, true, transA, true);
      }
    });
  }
  return out;
}

/**
 * y = x · Wᵀ (+ b), the HF/PyTorch nn.Linear convention: W is [out, in]. x may have any
 * leading shape; its last dimension must be `in`.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  const inF = w.shape[1];
  const outF = w.shape[0];
  if (x.cols !== inF) {
    throw new Error(`linear: input has ${x.cols} features, weight [${w.shape.join(", ")}] expects ${inF}`);
  }
  if (bias && bias.size !== outF) throw new Error(`linear: bias has ${bias.size} elements, expected ${outF}`);
  const rows = x.rows;
  const grad = needsGrad(x, w, bias);
  const outShape = [...x.shape.slice(0, -1), outF];
  const out = new Tensor(new Float32Array(rows * outF), outShape, grad);
  const y = out.data;
  if (bias) {
    const bd = bias.data;
    for (let r = 0; r < rows; r++) y.set(bd, r * outF);
  }
  k().matmul(x.data, w.data, y, rows, outF, inF, false, true, bias != null);
  if (grad) {
    record(() => {
      const dy = out.grad;
      if (dy === null) return;
      if (x.requiresGrad) k().matmul(dy, w.data, x.ensureGrad(), rows, inF, outF, false, false, true);
      if (w.requiresGrad) k().matmul(dy, x.data, w.ensureGrad(), outF, inF, rows, true, false, true);
      if (bias?.requiresGrad) {
        const db = bias.ensureGrad();
        for (let r = 0; r < rows; r++) {
          const o = r * outF;
          for (let j = 0; j < outF; j++) db[j] += dy[o + j];
        }
      }
    });
  }
  return out;
}
