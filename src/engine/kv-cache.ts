import type { KernelMemory } from "./memory.ts";

/**
 * Keys and values of past positions, per layer, laid out [B, kvHeads, capacity, headDim]
 * so that one head's keys are a contiguous [length, headDim] block the matmul kernel can
 * read directly.
 */
export class KvCache {
  readonly batch: number;
  readonly kvHeads: number;
  readonly headDim: number;
  capacity: number;
  /** Number of positions already stored. */
  length = 0;
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /**
   * Where k/v live when not in ordinary memory: the kernels' memory, so attention reads
   * them in place (and the fast decode path can address them). Such a cache must be
   * `dispose`d: that memory is not garbage collected.
   */
  readonly memory: KernelMemory | null;

  constructor(
    layers: number,
    batch: number,
    kvHeads: number,
    headDim: number,
    capacity: number,
    memory: KernelMemory | null = null,
  ) {
    this.memory = memory;
    this.batch = batch;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.capacity = Math.max(1, capacity);
    this.k = [];
    this.v = [];
    for (let l = 0; l < layers; l++) {
      this.k.push(this.buffer(batch * kvHeads * this.capacity * headDim));
      this.v.push(this.buffer(batch * kvHeads * this.capacity * headDim));
    }
  }

  private buffer(length: number): Float32Array {
    return this.memory === null ? new Float32Array(length) : this.memory.alloc(length);
  }

  /** Returns kernel-memory buffers (a no-op for an ordinary cache); the cache is unusable after. */
  dispose(): void {
    if (this.memory !== null) {
      for (const arr of [this.k, this.v]) for (const b of arr.splice(0)) this.memory.free(b);
    }
    this.length = 0;
  }

  /** Makes room for `needed` positions in total, copying what is stored. */
  reserve(needed: number): void {
    if (needed <= this.capacity) return;
    const cap = Math.max(needed, this.capacity * 2);
    const D = this.headDim;
    for (let l = 0; l < this.k.length; l++) {
      for (const arr of [this.k, this.v]) {
        const old = arr[l];
        const next = this.buffer(this.batch * this.kvHeads * cap * D);
        for (let bh = 0; bh < this.batch * this.kvHeads; bh++) {
          next.set(
            old.subarray(bh * this.capacity * D, bh * this.capacity * D + this.length * D),
            bh * cap * D,
          );
        }
        arr[l] = next;
        this.memory?.free(old);
      }
    }
    this.capacity = cap;
  }

  /** A cache with `n` copies of every batch row (one prompt prefilled, n samples decoded). */
  repeatRows(n: number): KvCache {
    const out = new KvCache(
      this.k.length,
      this.batch * n,
      this.kvHeads,
      this.headDim,
      this.capacity,
      this.memory,
    );
    const rowSize = this.kvHeads * this.capacity * this.headDim;
    for (let l = 0; l < this.k.length; l++) {
      for (let b = 0; b < this.batch; b++) {
        for (let r = 0; r < n; r++) {
          const dst = (b * n + r) * rowSize;
          out.k[l].set(this.k[l].subarray(b * rowSize, (b + 1) * rowSize), dst);
          out.v[l].set(this.v[l].subarray(b * rowSize, (b + 1) * rowSize), dst);
        }
      }
    }
    out.length = this.length;
    return out;
  }
}
