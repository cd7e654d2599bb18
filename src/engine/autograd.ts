import type { Tensor } from "./tensor.ts";

/**
 * Tape autograd (as in llm.c, but recorded): every op that sees an input requiring a
 * gradient pushes a backward closure; `backward(loss)` runs them newest first. There is
 * no graph object: the tape is the order ops ran in, which is already topological.
 */
type BackwardFn = () => void;

let tape: BackwardFn[] = [];
let gradEnabled = true;

/** True when an op on these inputs must record its backward. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

export function record(fn: BackwardFn): void {
  tape.push(fn);
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording anything (inference, evaluation, weight updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Drops recorded closures (and the activations they hold) without running them. */
export function clearTape(): void {
  tape = [];
}

export function tapeLength(): number {
  return tape.length;
}

/**
 * Backpropagates from a scalar loss (or from a seed gradient of the loss's size).
 * Gradients accumulate into `.grad` of every tensor that requires one; the tape is
 * consumed.
 */
export function backward(loss: Tensor, seed?: Float32Array): void {
  const g = loss.ensureGrad();
  if (seed) {
    if (seed.length !== g.length)
      throw new Error(`backward seed has ${seed.length} elements, loss has ${g.length}`);
    g.set(seed);
  } else {
    if (loss.size !== 1)
      throw new Error(`backward() without a seed needs a scalar loss, got [${loss.shape.join(", ")}]`);
    g[0] = 1;
  }
  const ops: (BackwardFn | null)[] = tape;
  tape = [];
  // Each closure is dropped once it has run, so the activations and gradients only it
  // holds can be collected while the rest of the backward runs (the peak stays near the
  // forward's instead of forward + every gradient).
  for (let i = ops.length - 1; i >= 0; i--) {
    const fn = ops[i]!;
    ops[i] = null;
    fn();
  }
}
