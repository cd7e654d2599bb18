import { getKernels } from "./kernels/index.ts";

/** The matmul kernels' own memory, when they have one (the WASM kernels do). */
export interface KernelMemory {
  alloc(length: number): Float32Array;
  free(view: Float32Array): void;
}

/**
 * Arrays inside the kernels' memory are multiplied in place; others are copied in on every
 * matmul. For weights that is the difference between reading a checkpoint once per token
 * and copying it too, so models can pin their weights here. Null with the TS kernels.
 */
export function kernelMemory(): KernelMemory | null {
  const k = getKernels() as Partial<KernelMemory>;
  return typeof k.alloc === "function" && typeof k.free === "function" ? (k as KernelMemory) : null;
}
