/**
 * A dense float32 tensor: row-major data, a shape, and (for anything on the autograd
 * tape) a lazily allocated gradient buffer of the same size.
 */
export class Tensor {
  data: Float32Array;
  readonly shape: readonly number[];
  grad: Float32Array | null = null;
  requiresGrad: boolean;

  constructor(data: Float32Array, shape: readonly number[], requiresGrad = false) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) {
      throw new Error(
        `Tensor data has ${data.length} elements but shape [${shape.join(", ")}] needs ${size}`,
      );
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
  }

  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, requiresGrad);
  }

  static from(values: ArrayLike<number>, shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(values), shape, requiresGrad);
  }

  get size(): number {
    return this.data.length;
  }

  /** Size of the last dimension (the feature dimension for row-wise ops). */
  get cols(): number {
    return this.shape[this.shape.length - 1];
  }

  /** Number of rows when viewed as [size / cols, cols]. */
  get rows(): number {
    return this.data.length / this.cols;
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  ensureGrad(): Float32Array {
    if (this.grad === null) this.grad = new Float32Array(this.data.length);
    return this.grad;
  }

  zeroGrad(): void {
    if (this.grad !== null) this.grad.fill(0);
  }

  /** Same data, another shape (no copy; the view does not share the gradient). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape, false);
  }

  /** A detached copy. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape.slice(), false);
  }

  item(): number {
    if (this.data.length !== 1)
      throw new Error(`item() needs a one-element tensor, got [${this.shape.join(", ")}]`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }
}
