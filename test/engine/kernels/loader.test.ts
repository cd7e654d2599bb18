import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";

const indexUrl = new URL("../../../src/engine/kernels/index.ts", import.meta.url).href;

// Each test re-imports the kernels with fresh module state (getKernels caches).
async function freshKernels() {
  vi.resetModules();
  return {
    index: await import("../../../src/engine/kernels/index.ts"),
    wasmModule: await import("../../../src/engine/kernels/wasm-module.ts"),
  };
}

const savedEnv = { ...process.env };
const scratchDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "emlab-kernels-"));
  scratchDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const key of ["EMLAB_WASM_DIR", "EMLAB_KERNELS", "EMLAB_THREADS"]) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

/** 2×3 · 3×2 with known integer result. */
function check(kernels: { matmul: (...args: never[]) => void }) {
  const c = new Float32Array(4);
  (kernels.matmul as (...args: unknown[]) => void)(
    new Float32Array([1, 2, 3, 4, 5, 6]),
    new Float32Array([7, 8, 9, 10, 11, 12]),
    c,
    2,
    2,
    3,
    false,
    false,
    false,
  );
  expect(Array.from(c)).toEqual([58, 64, 139, 154]);
}

describe("kernel loading", () => {
  it("assembles the .wat with wabt when no .wasm was built (fresh clone)", async () => {
    const dir = tempDir();
    process.env.EMLAB_WASM_DIR = dir;
    const { index, wasmModule } = await freshKernels();
    const loaded = wasmModule.loadKernelModule();
    expect(typeof loaded).not.toBe("string");
    expect(existsSync(join(dir, "matmul.wasm"))).toBe(true);
    const kernels = index.getKernels("wasm", { threads: 1 });
    expect(kernels.name).toBe("wasm-simd");
    check(kernels);
  }, 60_000);

  it("falls back to TS with one stderr line when WASM cannot be built or loaded", async () => {
    // A build dir under a regular file: nothing can be written or read there.
    const blocker = join(tempDir(), "not-a-dir");
    writeFileSync(blocker, "");
    process.env.EMLAB_WASM_DIR = join(blocker, "kernels");
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const { index } = await freshKernels();
    const kernels = index.getKernels("auto");
    expect(kernels.name).toBe("ts");
    check(kernels);
    const lines = stderr.mock.calls.map((call) => String(call[0])).filter((l) => l.includes("emlab:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WASM matmul kernels unavailable .*using the slower TS kernels\n$/);
    // Asking for WASM explicitly is an error, not a silent fallback.
    expect(() => index.getKernels("wasm")).toThrow(/WASM matmul kernels unavailable/);
  }, 60_000);

  it("EMLAB_KERNELS overrides the preference and is validated", async () => {
    const { index } = await freshKernels();
    process.env.EMLAB_KERNELS = "ts";
    expect(index.getKernels("wasm").name).toBe("ts");
    process.env.EMLAB_KERNELS = "gpu";
    expect(() => index.getKernels()).toThrow(/EMLAB_KERNELS must be one of auto, wasm, ts, got "gpu"/);
  });

  it("EMLAB_THREADS overrides the thread option and is validated", async () => {
    const { index } = await freshKernels();
    process.env.EMLAB_THREADS = "1";
    expect(index.resolveThreads(2)).toBe(1);
    expect(index.getKernels("wasm", { threads: 2 }).threads).toBe(1);
    process.env.EMLAB_THREADS = "zero";
    expect(() => index.resolveThreads()).toThrow(/EMLAB_THREADS must be a positive integer/);
  });

  it("idle worker threads do not keep the process alive", () => {
    const script = [
      `import { getKernels } from ${JSON.stringify(indexUrl)};`,
      'const k = getKernels("wasm", { threads: 2 });',
      "await k.ready();",
      "const n = 256; const a = new Float32Array(n * n).fill(1); const c = new Float32Array(n * n);",
      "k.matmul(a, a, c, n, n, n, false, false, false);",
      "console.log(k.threads, k.stats().parallelCalls, c[0]);",
    ].join("\n");
    // No exit call: the child ends only if the unref'd workers let it.
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", script], {
      env: { ...process.env, EMLAB_THREADS: "" },
      timeout: 30_000,
      encoding: "utf8",
    });
    expect(out.trim()).toBe("2 1 256");
  }, 60_000);
});
