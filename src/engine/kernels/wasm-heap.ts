import type { WasmMemory } from "./wasm-api.ts";

const PAGE = 65536;
const MAX_PAGES = 65536;
const ALIGN = 64;

/**
 * A first-fit allocator over a region of a growable WebAssembly memory: the staging
 * buffers of the matmul and tensors the engine chooses to keep inside WASM memory.
 * Blocks are 64-byte aligned (whole cache lines); freed neighbours coalesce; the memory
 * grows (never shrinks) when nothing fits. Sizes and offsets are in bytes.
 */
export class WasmHeap {
  /** Free blocks, sorted by start, never adjacent (always coalesced). */
  private readonly free: { start: number; size: number }[] = [];
  private readonly used = new Map<number, number>();
  private top: number;
  /** Highest byte ever handed out: memory above it is still as grow left it (zero). */
  private highWater: number;

  constructor(
    private readonly memory: WasmMemory,
    base: number,
    private readonly onGrow: () => void,
  ) {
    this.top = Math.ceil(base / ALIGN) * ALIGN;
    this.highWater = this.top;
  }

  /** Bytes currently handed out. */
  get usedBytes(): number {
    let total = 0;
    for (const size of this.used.values()) total += size;
    return total;
  }

  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i];
      if (block.size < size) continue;
      const start = block.start;
      if (block.size === size) this.free.splice(i, 1);
      else {
        block.start += size;
        block.size -= size;
      }
      this.used.set(start, size);
      return start;
    }
    // Nothing fits: take from the top, absorbing a free block that ends there.
    let start = this.top;
    const last = this.free[this.free.length - 1];
    if (last !== undefined && last.start + last.size === this.top) {
      start = last.start;
      this.free.pop();
    }
    this.ensure(start + size);
    this.top = start + size;
    if (this.top > this.highWater) this.highWater = this.top;
    this.used.set(start, size);
    return start;
  }

  /**
   * `alloc`, zero-filled. Only the part below the high-water mark is cleared: the rest was
   * never used, and writing it would touch every page of a large block twice (a model's
   * weights read straight into kernel memory, say).
   */
  allocZeroed(bytes: number): number {
    const mark = this.highWater;
    const start = this.alloc(bytes);
    const dirty = Math.min(start + (this.used.get(start) ?? 0), mark);
    if (dirty > start) new Uint8Array(this.memory.buffer, start, dirty - start).fill(0);
    return start;
  }

  release(start: number): void {
    const size = this.used.get(start);
    if (size === undefined) throw new Error(`WasmHeap: ${start} is not an allocated block (double free?)`);
    this.used.delete(start);
    if (start + size === this.top) {
      this.top = start;
      const last = this.free[this.free.length - 1];
      if (last !== undefined && last.start + last.size === this.top) {
        this.top = last.start;
        this.free.pop();
      }
      return;
    }
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    const block = { start, size };
    this.free.splice(i, 0, block);
    const next = this.free[i + 1];
    if (next !== undefined && start + size === next.start) {
      block.size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev !== undefined && prev.start + prev.size === start) {
      prev.size += block.size;
      this.free.splice(i, 1);
    }
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil(bytes / PAGE);
    if (pages > MAX_PAGES) {
      throw new Error(`WASM kernel memory would need ${bytes} bytes, over the 4 GiB WebAssembly limit`);
    }
    this.memory.grow(pages - have / PAGE);
    this.onGrow();
  }
}
