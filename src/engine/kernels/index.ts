import { availableParallelism } from "node:os";
import { createTsKernels } from "./ts-matmul.ts";
import type { MatmulKernels } from "./types.ts";
import { createWasmKernels } from "./wasm-matmul.ts";
import { loadKernelModule } from "./wasm-module.ts";

export type { MatmulKernels } from "./types.ts";

export type KernelPreference = "auto" | "wasm" | "ts";

export interface KernelOptions {
  /** Threads for large matmuls (WASM only), including the caller's. Env EMLAB_THREADS overrides; 1 disables. */
  threads?: number;
}

const PREFERENCES: readonly KernelPreference[] = ["auto", "wasm", "ts"];
const cache = new Map<string, MatmulKernels>();
let wasmUnavailable: string | null = null;

function envPreference(): KernelPreference | null {
  const raw = process.env.EMLAB_KERNELS;
  if (raw === undefined || raw === "") return null;
  if (!(PREFERENCES as readonly string[]).includes(raw)) {
    throw new Error(`EMLAB_KERNELS must be one of ${PREFERENCES.join(", ")}, got "${raw}"`);
  }
  return raw as KernelPreference;
}

/** Thread count: EMLAB_THREADS, else the option, else every available core. */
export function resolveThreads(option?: number): number {
  const raw = process.env.EMLAB_THREADS;
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`EMLAB_THREADS must be a positive integer, got "${raw}"`);
    return n;
  }
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < 1)
      throw new Error(`threads must be a positive integer, got ${option}`);
    return option;
  }
  return availableParallelism();
}

/**
 * The matmul kernels to use (one shared instance per configuration). "auto" takes the
 * WASM SIMD kernels when they load and falls back to pure TS with a one-line warning;
 * "wasm" throws when they cannot load. EMLAB_KERNELS=auto|wasm|ts overrides `pref`.
 */
export function getKernels(pref: KernelPreference = "auto", options: KernelOptions = {}): MatmulKernels {
  const choice = envPreference() ?? pref;
  if (choice === "ts") return cached("ts", createTsKernels);
  const threads = resolveThreads(options.threads);
  if (wasmUnavailable === null) {
    const key = `wasm:${threads}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const loaded = loadKernelModule();
    if (typeof loaded !== "string") return cached(key, () => createWasmKernels(loaded, { threads }));
    wasmUnavailable = loaded.replace(/\s*\n\s*/g, " ");
    if (choice === "auto") {
      process.stderr.write(
        `emlab: WASM matmul kernels unavailable (${loaded}); using the slower TS kernels\n`,
      );
    }
  }
  if (choice === "wasm") throw new Error(`WASM matmul kernels unavailable: ${wasmUnavailable}`);
  return cached("ts", createTsKernels);
}

function cached(key: string, make: () => MatmulKernels): MatmulKernels {
  let kernels = cache.get(key);
  if (kernels === undefined) {
    kernels = make();
    cache.set(key, kernels);
  }
  return kernels;
}
