/**
 * The matmul seam between the engine's ops and its kernels. Everything is row-major,
 * contiguous Float32Array. The WASM SIMD kernels and the pure-TS fallback implement it;
 * `getKernels()` picks one (EMLAB_KERNELS=wasm|ts overrides the automatic choice).
 */
export interface MatmulKernels {
  readonly name: "wasm-simd" | "ts";
  /**
   * C[m×n] = op(A) · op(B), or C += op(A) · op(B) when `accumulate`.
   * op(A) is m×k: A is stored m×k, or k×m when `transA`.
   * op(B) is k×n: B is stored k×n, or n×k when `transB`.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
  ): void;
  /** Threads a large matmul may be split across, the caller's included (optional). */
  readonly threads?: number;
  /** Resolves once any worker threads have started; until then matmuls run on one thread. */
  ready?(): Promise<void>;
  /**
   * Attention-score softmax in place (optional): row i of x[rows×cols] becomes
   * softmax(scale · x[i, 0..len)), len = min(cols, offset + i + 1), zeros after it
   * (offset ≥ cols: no mask). Same result as the TS loop within float32 rounding.
   */
  causalSoftmax?(x: Float32Array, rows: number, cols: number, offset: number, scale: number): void;
}
