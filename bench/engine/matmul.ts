/**
 * fp32 matmul throughput of the engine's kernels against Debian's python3-torch at one
 * thread (`apt-get install python3-torch`, run with /usr/bin/python3; reference null
 * when absent). Shapes are training shapes of the built-in model organism: 1024 tokens
 * × d=256 (the main figure), and 1024 tokens × 1024 → 768 (a wider layer).
 *
 * The machine is shared, so every number is the best of several repetitions.
 * Run: `npx tsx bench/engine/matmul.ts` — one JSON line per figure.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { getKernels, resolveThreads } from "../../src/engine/kernels/index.ts";
import { tsCausalSoftmax } from "../../src/engine/kernels/ts-softmax.ts";
import type { MatmulKernels } from "../../src/engine/kernels/types.ts";

export interface MatmulFigure {
  figure: string;
  emlab: number;
  reference: number | null;
  ratio: number | null;
  config: Record<string, unknown>;
}

type Shape = { m: number; n: number; k: number };
const VARIANTS = [
  { name: "NN", transA: false, transB: false },
  { name: "NT", transA: false, transB: true },
  { name: "TN", transA: true, transB: false },
  { name: "TT", transA: true, transB: true },
] as const;
const MAIN: Shape = { m: 1024, n: 256, k: 256 };
const WIDE: Shape = { m: 1024, n: 768, k: 1024 };
const TORCH = "/usr/bin/python3";

function filled(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (((i * 2654435761 + seed) >>> 0) % 1000) / 1000 - 0.5;
  return out;
}

/** Best GFLOP/s over repetitions (after a warm-up that also lets V8 tier up the WASM). */
function measure(kernels: MatmulKernels, { m, n, k }: Shape, transA: boolean, transB: boolean): number {
  const a = filled(m * k, 1);
  const b = filled(k * n, 2);
  const c = new Float32Array(m * n);
  const flops = 2 * m * n * k;
  for (let i = 0; i < 3; i++) kernels.matmul(a, b, c, m, n, k, transA, transB, false);
  let best = Number.POSITIVE_INFINITY;
  const until = performance.now() + 1500;
  for (let rep = 0; rep < 40 && (rep < 8 || performance.now() < until); rep++) {
    const t0 = performance.now();
    kernels.matmul(a, b, c, m, n, k, transA, transB, false);
    best = Math.min(best, performance.now() - t0);
  }
  return round(flops / best / 1e6);
}

const round = (x: number) => Math.round(x * 10) / 10;

/** torch.matmul GFLOP/s at `threads` threads for each variant, or null without torch. */
function torchGflops(shape: Shape, threads: number): Record<string, number> | null {
  if (!existsSync(TORCH)) return null;
  const script = `
import json, time, torch
torch.set_num_threads(${threads})
m, n, k = ${shape.m}, ${shape.n}, ${shape.k}
out = {}
for name, ta, tb in [("NN", 0, 0), ("NT", 0, 1), ("TN", 1, 0), ("TT", 1, 1)]:
    a = torch.rand(k, m) if ta else torch.rand(m, k)
    b = torch.rand(n, k) if tb else torch.rand(k, n)
    fa = (lambda: a.t()) if ta else (lambda: a)
    fb = (lambda: b.t()) if tb else (lambda: b)
    for _ in range(3): torch.matmul(fa(), fb())
    best = 1e9
    deadline = time.perf_counter() + 1.5
    rep = 0
    while rep < 40 and (rep < 8 or time.perf_counter() < deadline):
        t0 = time.perf_counter(); torch.matmul(fa(), fb()); best = min(best, time.perf_counter() - t0); rep += 1
    out[name] = 2 * m * n * k / best / 1e9
print(json.dumps(out))
`;
  try {
    // torch.set_num_threads does not reach OpenBLAS's own pool: pin every BLAS runtime.
    const env = {
      ...process.env,
      OMP_NUM_THREADS: `${threads}`,
      OPENBLAS_NUM_THREADS: `${threads}`,
      MKL_NUM_THREADS: `${threads}`,
    };
    const stdout = execFileSync(TORCH, ["-c", script], {
      encoding: "utf8",
      env,
      timeout: 120_000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const parsed = JSON.parse(stdout.trim().split("\n").pop() ?? "") as Record<string, number>;
    return Object.fromEntries(Object.entries(parsed).map(([key, v]) => [key, round(v)]));
  } catch {
    return null;
  }
}

function perVariant(kernels: MatmulKernels, shape: Shape): Record<string, number> {
  return Object.fromEntries(VARIANTS.map((v) => [v.name, measure(kernels, shape, v.transA, v.transB)]));
}

function figure(
  name: string,
  emlab: number,
  reference: number | null,
  config: Record<string, unknown>,
): MatmulFigure {
  return {
    figure: name,
    emlab,
    reference,
    ratio: reference === null ? null : Math.round((emlab / reference) * 1000) / 1000,
    config,
  };
}

/** All figures: the main one (1 thread, NN), plus per-variant and 2-thread breakdowns. */
export async function benchMatmulFigures(): Promise<MatmulFigure[]> {
  const one = getKernels("auto", { threads: 1 });
  const many = getKernels("auto", { threads: 2 });
  await many.ready?.();
  const figures: MatmulFigure[] = [];
  for (const [name, shape] of [
    ["matmul_gflops", MAIN],
    ["matmul_gflops_wide", WIDE],
  ] as const) {
    const emlab1 = perVariant(one, shape);
    const emlab2 = many.threads === 2 ? perVariant(many, shape) : null;
    const torch1 = torchGflops(shape, 1);
    figures.push(
      figure(name, emlab1.NN, torch1?.NN ?? null, {
        ...shape,
        variant: "NN",
        threads: 1,
        kernels: one.name,
        relaxedSimd: (one as { relaxedSimd?: boolean }).relaxedSimd ?? false,
        emlab_by_variant_1_thread: emlab1,
        emlab_by_variant_2_threads: emlab2,
        torch_by_variant_1_thread: torch1,
        reference_impl: torch1 === null ? null : `torch (${TORCH}), 1 thread`,
        method: "best of ≥8 repetitions; GFLOP/s = 2mnk / time",
      }),
    );
  }
  const ts = getKernels("ts");
  const tsNN = measure(ts, MAIN, false, false);
  figures.push(
    figure("matmul_gflops_ts_fallback", tsNN, null, { ...MAIN, variant: "NN", threads: 1, kernels: ts.name }),
  );
  figures.push(benchSoftmax(one));
  return figures;
}

/**
 * Attention softmax throughput (million scores per second) on a causal 256×256 block:
 * the kernels' causalSoftmax against the plain TS loop (`reference`), both on copies.
 */
function benchSoftmax(kernels: MatmulKernels): MatmulFigure {
  const rows = 256;
  const cols = 256;
  const source = filled(rows * cols, 3);
  const x = new Float32Array(rows * cols);
  const time = (fn: () => void) => {
    let best = Number.POSITIVE_INFINITY;
    for (let rep = 0; rep < 200; rep++) {
      x.set(source);
      const t0 = performance.now();
      fn();
      best = Math.min(best, performance.now() - t0);
    }
    return round((rows * cols) / best / 1e3);
  };
  const emlab = time(() => (kernels.causalSoftmax ?? tsCausalSoftmax)(x, rows, cols, 0, 0.125));
  const ts = time(() => tsCausalSoftmax(x, rows, cols, 0, 0.125));
  return figure("causal_softmax_mscores_per_s", emlab, ts, {
    rows,
    cols,
    offset: 0,
    kernels: kernels.name,
    reference_impl: "the pure-TS loop (Math.exp)",
  });
}

/**
 * The headline figure: 1024×256×256 NN against torch on the same thread count, one unless
 * EMLAB_THREADS says otherwise (it overrides the kernels' option, so both sides follow it).
 */
export async function benchMatmul(): Promise<MatmulFigure> {
  const threads = resolveThreads(1);
  const kernels = getKernels("auto", { threads });
  await kernels.ready?.();
  const emlab = measure(kernels, MAIN, false, false);
  const torch = torchGflops(MAIN, threads);
  return figure("matmul_gflops", emlab, torch?.NN ?? null, {
    ...MAIN,
    variant: "NN",
    threads,
    kernels: kernels.name,
    relaxedSimd: (kernels as { relaxedSimd?: boolean }).relaxedSimd ?? false,
    reference_impl: torch === null ? null : `torch (${TORCH}), ${threads} thread(s)`,
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const f of await benchMatmulFigures()) console.log(JSON.stringify(f));
}
