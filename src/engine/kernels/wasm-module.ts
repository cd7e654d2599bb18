import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { type WasmModule, wasmApi } from "./wasm-api.ts";

/**
 * Finds (or assembles) the compiled matmul kernel and compiles it synchronously, so
 * `getKernels()` can stay synchronous. Order: build/kernels/*.wasm from `npm run build`;
 * else run scripts/build-wasm.mjs (wabt) in a child process, which also caches the
 * result; else null, and the caller falls back to the TS kernels.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** Where compiled kernels live; EMLAB_WASM_DIR overrides (tests build into a temp dir). */
function buildDir(): string {
  return process.env.EMLAB_WASM_DIR || join(repoRoot, "build", "kernels");
}
const buildScript = join(repoRoot, "scripts", "build-wasm.mjs");
const kernelSources = join(repoRoot, "src", "engine", "kernels");
const watSource = join(kernelSources, "matmul.wat");

export interface LoadedKernelModule {
  module: WasmModule;
  /** True when the micro-kernel uses f32x4.relaxed_madd (fused multiply-add). */
  relaxed: boolean;
  /** Where the bytes came from, for diagnostics. */
  source: string;
  /** softmax.wat's module, or null when it is missing (the TS softmax is used then). */
  softmax: WasmModule | null;
  /** decode.wat's module (single-token decode kernels), or null when it is missing. */
  decode: WasmModule | null;
}

// A minimal module whose only function uses f32x4.relaxed_madd (opcode 0xfd 0x105):
// (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd)
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02,
  0x0b,
]);

let relaxedSupport: boolean | null = null;

/**
 * Whether this V8 runs relaxed-simd. Node 20's V8 (11.3) implements it behind
 * --experimental-wasm-relaxed-simd (shipped by default from V8 11.4), so we enable the
 * flag when validation fails, then test again. EMLAB_RELAXED_SIMD=0 opts out.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedSupport !== null) return relaxedSupport;
  if (process.env.EMLAB_RELAXED_SIMD === "0") {
    relaxedSupport = false;
    return false;
  }
  if (wasmApi === undefined) return false;
  if (!wasmApi.validate(RELAXED_PROBE)) {
    try {
      setFlagsFromString("--experimental-wasm-relaxed-simd");
    } catch {
      // Not a V8 that knows the flag: the probe below stays false.
    }
  }
  const supported = wasmApi.validate(RELAXED_PROBE);
  relaxedSupport = supported;
  return supported;
}

function assembleWithChildProcess(outDir: string): string | null {
  if (!existsSync(buildScript)) return `${buildScript} is missing`;
  try {
    execFileSync(process.execPath, [buildScript, "--quiet", "--out", outDir], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 60_000,
    });
    return null;
  } catch (err) {
    // The script reports failures as one "build-wasm: ..." line; keep just the last line.
    const lines = ((err as { stderr?: Buffer }).stderr?.toString() ?? "").trim().split("\n");
    return lines[lines.length - 1] || (err as Error).message.split("\n")[0];
  }
}

/** A binary that is missing, or older than its .wat (edited since the last build). */
function needsBuild(wasm: string, wat: string): boolean {
  try {
    return statSync(wasm).mtimeMs < statSync(wat).mtimeMs;
  } catch {
    return !existsSync(wasm);
  }
}

function loadOptional(path: string): WasmModule | null {
  try {
    return existsSync(path) && wasmApi !== undefined ? new wasmApi.Module(readFileSync(path)) : null;
  } catch {
    return null;
  }
}

/** Returns the compiled kernel module, or a reason string when WASM is unusable here. */
export function loadKernelModule(): LoadedKernelModule | string {
  const api = wasmApi;
  if (api === undefined) return "WebAssembly is not available";
  const relaxed = relaxedSimdSupported();
  const dir = buildDir();
  const paths = (relaxed ? ["matmul-relaxed.wasm", "matmul.wasm"] : ["matmul.wasm"]).map((n) => join(dir, n));
  // Assemble when nothing is built yet (fresh clone) or the .wat changed since the build.
  const softmaxPath = join(dir, "softmax.wasm");
  const decodePath = join(dir, "decode.wasm");
  if (
    needsBuild(paths[0], watSource) ||
    needsBuild(softmaxPath, join(kernelSources, "softmax.wat")) ||
    needsBuild(decodePath, join(kernelSources, "decode.wat"))
  ) {
    const failure = assembleWithChildProcess(dir);
    if (failure !== null && !paths.some((p) => existsSync(p))) {
      return `could not assemble ${watSource}: ${failure}`;
    }
  }
  let reason = `no kernel binary in ${dir}`;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    try {
      return {
        module: new api.Module(readFileSync(path)),
        relaxed: path.endsWith("-relaxed.wasm"),
        source: path,
        softmax: loadOptional(softmaxPath),
        decode: loadOptional(decodePath),
      };
    } catch (err) {
      // A foreign or corrupt binary: note it and try the next one.
      reason = `${path}: ${(err as Error).message}`;
    }
  }
  return reason;
}
