/**
 * Block sizes and per-thread scratch size of the WASM matmul (mirrors the globals in
 * matmul.wat; change both together). Sizes are in floats unless named *_BYTES.
 */
export const MR = 4;
export const NR = 8;
export const MC = 128;
export const KC = 256;
export const NC = 1024;

/** Packed A block + packed B panel + one edge tile, rounded up to a 64-byte multiple. */
export const SCRATCH_BYTES = Math.ceil(((MC * KC + KC * NC + MR * NR) * 4) / 64) * 64;
