/**
 * SAE training throughput, one JSON line per size:
 *   {"figure": "sae_train_tokens_per_s", "emlab": X, "reference": Y, "ratio": X/Y, "config": {...}}
 * emlab's TopK SAE (src/engine/sae/train.ts) against a plain PyTorch TopK SAE trained the
 * same way (bench/sae_torch.py: same activations, batch size, steps, AuxK, decoder
 * projection and Adam), both on one thread (EMLAB_THREADS=1; torch.set_num_threads(1)).
 * The activations are fixed synthetic residual-like rows (sums of a few unit atoms of a
 * random dictionary in d_in 96, the organism's width), written once as safetensors for
 * both sides. Tokens/s counts the timed steps after the warm-up ones.
 * Python: $EMLAB_TORCH_PYTHON, else .venv-torch/bin/python (reference null without torch).
 * Run: `npx tsx bench/sae.bench.ts [--steps 12]`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

process.env.EMLAB_THREADS ??= "1";

const { writeSafetensors } = await import("../src/engine/io/safetensors.ts");
const { Rng } = await import("../src/engine/rng.ts");
const { trainSae } = await import("../src/engine/sae/train.ts");

const ROOT = join(import.meta.dirname, "..");
const PYTHON = process.env.EMLAB_TORCH_PYTHON ?? join(ROOT, ".venv-torch", "bin", "python");
const argSteps = process.argv.indexOf("--steps");
const STEPS = argSteps > 0 ? Number(process.argv[argSteps + 1]) : 12;
const WARMUP = 2;
const BATCH = 4096;
const D_IN = 96;
const DEAD_AFTER = 8 * BATCH;

function activations(rows: number): Float32Array {
  const rng = new Rng(17);
  const atoms = 1024;
  const dict = new Float32Array(atoms * D_IN);
  for (let a = 0; a < atoms; a++) {
    let s = 0;
    for (let i = 0; i < D_IN; i++) {
      dict[a * D_IN + i] = rng.normal();
      s += dict[a * D_IN + i] ** 2;
    }
    for (let i = 0; i < D_IN; i++) dict[a * D_IN + i] /= Math.sqrt(s);
  }
  const x = new Float32Array(rows * D_IN);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 8; c++) {
      const a = rng.int(atoms);
      const w = 0.5 + 2 * rng.next();
      for (let i = 0; i < D_IN; i++) x[r * D_IN + i] += w * dict[a * D_IN + i];
    }
    for (let i = 0; i < D_IN; i++) x[r * D_IN + i] += 0.05 * rng.normal();
  }
  return x;
}

const rows = STEPS * BATCH;
const x = activations(rows);
const dir = mkdtempSync(join(tmpdir(), "emlab-sae-bench-"));
const file = join(dir, "acts.safetensors");
writeSafetensors(file, new Map([["x", { shape: [rows, D_IN], data: x }]]));

for (const [dSae, k] of [
  [768, 32],
  [1536, 32],
]) {
  const batches = Array.from({ length: STEPS }, (_, s) =>
    x.subarray(s * BATCH * D_IN, (s + 1) * BATCH * D_IN),
  );
  let t0 = 0;
  const { log } = await trainSae(
    {
      architecture: "topk",
      dIn: D_IN,
      dSae,
      k,
      hookName: "blocks.1.hook_resid_post",
      hookLayer: 1,
      applyBDecToInput: true,
      normalizeActivations: "none",
    },
    batches,
    {
      seed: 0,
      learningRate: 1e-3,
      batchSize: BATCH,
      deadAfterTokens: DEAD_AFTER,
      log: (e) => {
        if (e.step === WARMUP) t0 = performance.now();
      },
    },
  );
  const emlab = ((STEPS - WARMUP) * BATCH) / ((performance.now() - t0) / 1000);
  let reference: number | null = null;
  let ref: Record<string, unknown> | null = null;
  if (existsSync(PYTHON)) {
    try {
      const out = execFileSync(
        PYTHON,
        [
          join(ROOT, "bench", "sae_torch.py"),
          file,
          String(dSae),
          String(k),
          String(BATCH),
          String(STEPS),
          String(WARMUP),
          String(DEAD_AFTER),
        ],
        {
          encoding: "utf8",
          env: { ...process.env, OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1", MKL_NUM_THREADS: "1" },
        },
      );
      ref = JSON.parse(out.trim().split("\n").at(-1)!);
      reference = ref!.tokens_per_s as number;
    } catch (e) {
      process.stderr.write(`torch reference failed: ${(e as Error).message}\n`);
    }
  }
  console.log(
    JSON.stringify({
      figure: "sae_train_tokens_per_s",
      emlab: Math.round(emlab),
      reference: reference === null ? null : Math.round(reference),
      ratio: reference === null ? null : Number((emlab / reference).toFixed(2)),
      config: {
        dIn: D_IN,
        dSae,
        k,
        batch: BATCH,
        steps: STEPS,
        warmup: WARMUP,
        emlabExplainedVariance: Number(log.at(-1)!.explainedVariance.toFixed(3)),
        torchExplainedVariance: ref ? Number((ref.explained_variance as number).toFixed(3)) : null,
        torch: ref?.torch ?? null,
      },
    }),
  );
}
rmSync(dir, { recursive: true, force: true });
