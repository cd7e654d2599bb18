import { describe, expect, it } from "vitest";
import { wasmApi } from "../../../src/engine/kernels/wasm-api.ts";
import { WasmHeap } from "../../../src/engine/kernels/wasm-heap.ts";

function makeHeap() {
  const memory = new wasmApi!.Memory({ initial: 1, maximum: 1024, shared: true });
  let grows = 0;
  const heap = new WasmHeap(memory, 100, () => grows++);
  return { heap, memory, grows: () => grows };
}

describe("WasmHeap", () => {
  it("hands out 64-byte aligned, disjoint blocks above its base", () => {
    const { heap } = makeHeap();
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    expect(a).toBe(128);
    expect(b).toBe(192);
    expect(heap.usedBytes).toBe(64 + 128);
  });

  it("coalesces freed neighbours and reuses the gap first-fit", () => {
    const { heap } = makeHeap();
    const a = heap.alloc(64);
    const b = heap.alloc(64);
    const c = heap.alloc(64);
    heap.alloc(64); // keeps the top above c
    heap.release(b);
    heap.release(a);
    expect(heap.alloc(128)).toBe(a); // a+b merged into one 128-byte block
    heap.release(c);
    expect(heap.alloc(64)).toBe(c);
  });

  it("grows the memory when nothing fits and shrinks its top on release", () => {
    const { heap, memory, grows } = makeHeap();
    const big = heap.alloc(200_000);
    expect(grows()).toBe(1);
    expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(big + 200_000);
    heap.release(big);
    expect(heap.alloc(200_000)).toBe(big);
  });

  it("rejects double frees and requests past the 4 GiB limit", () => {
    const { heap } = makeHeap();
    const a = heap.alloc(64);
    heap.release(a);
    expect(() => heap.release(a)).toThrow(/not an allocated block/);
    expect(() => heap.alloc(5 * 2 ** 30)).toThrow(/over the 4 GiB WebAssembly limit/);
  });
});
