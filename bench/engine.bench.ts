/**
 * Engine throughput figures, one JSON line each:
 *   {"figure": NAME, "emlab": X, "reference": Y, "ratio": X/Y, "config": {...}}
 * matmul_gflops (the kernels' headline), forward_tokens_per_s and train_tokens_per_s on
 * the 3.3 M-parameter config (reference: the same model in Debian's torch, same threads;
 * null when /usr/bin/python3 has no torch), generate_tokens_per_s on a ~5 M model
 * (reference: node-llama-cpp on its GGUF when installed, else null).
 *
 * Both sides run the same number of threads (EMLAB_THREADS, default 1; torch gets it as
 * set_num_threads) and report their best timed step (forward: best of 5; train: best of 5
 * steps after 2 warm-up steps; generate: best of 5 runs after a warm-up run). The machine
 * is shared, so take the numbers as noisy.
 * Run: `npx tsx bench/engine.bench.ts [--only train,forward,generate,matmul] [--threads 1,2]`;
 * `--threads` with several counts runs the bench once per count, each in its own process
 * (the kernels' thread count is fixed per process).
 *
 * generate_tokens_per_s, both sides measured the same way: the clock runs from the call
 * with the 32-token prompt until the 128th generated token is sampled, so it includes the
 * prompt prefill, 127 single-token decode steps and the sampling of 128 tokens
 * (temperature 1, top-k 40, top-p 0.95: node-llama-cpp's defaults, passed explicitly to
 * both). emlab's figure also includes allocating its KV cache and repacking the weights
 * for the decode kernels (once per generate call); node-llama-cpp's excludes context
 * creation (done once, outside the clock). Tokens/s is the number of tokens actually
 * produced over that time (the config records both counts). node-llama-cpp runs with
 * `threads: 1`; the config records each side's process CPU time per wall-clock second
 * while timed (about 1.0 means one busy thread).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { best } from "./timing.ts";

const threadsArg = (() => {
  const i = process.argv.indexOf("--threads");
  return i >= 0 ? process.argv[i + 1].split(",") : null;
})();
if (threadsArg !== null && threadsArg.length > 1) {
  const { spawnSync } = await import("node:child_process");
  const rest = process.argv.slice(2).filter((a, i, all) => a !== "--threads" && all[i - 1] !== "--threads");
  for (const n of threadsArg) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], ...rest], {
      stdio: "inherit",
      env: { ...process.env, EMLAB_THREADS: n },
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}
if (threadsArg !== null) process.env.EMLAB_THREADS = threadsArg[0];
process.env.EMLAB_THREADS ??= "1";

const { benchMatmul } = await import("./engine/matmul.ts");
const { noGrad } = await import("../src/engine/autograd.ts");
const { makeShape } = await import("../src/engine/config.ts");
const { generate } = await import("../src/engine/generate.ts");
const { LlamaModel } = await import("../src/engine/model.ts");
const { Trainer } = await import("../src/engine/train.ts");
const { Rng } = await import("../src/engine/rng.ts");
const { getKernels } = await import("../src/engine/kernels/index.ts");
// Worker threads start asynchronously; until then every matmul runs on this thread.
await getKernels().ready?.();

const TORCH = "/usr/bin/python3";
const ROOT = join(import.meta.dirname, "..");

interface Figure {
  figure: string;
  emlab: number;
  reference: number | null;
  ratio: number | null;
  config: Record<string, unknown>;
}

function emit(f: Figure): void {
  console.log(JSON.stringify(f));
}

function fig(
  figure: string,
  emlab: number,
  reference: number | null,
  config: Record<string, unknown>,
): Figure {
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    figure,
    emlab: r(emlab),
    reference: reference === null ? null : r(reference),
    ratio: reference ? r(emlab / reference) : null,
    config,
  };
}

// The 3.3 M-parameter training config: d 256, 4 layers, 8 heads, seq 128, batch 8.
const TRAIN = {
  vocab: 512,
  d: 256,
  ff: 688,
  layers: 4,
  heads: 8,
  kvHeads: 8,
  tied: true,
  batch: 8,
  seq: 128,
  steps: 5,
};
// ~5 M parameters for decoding.
const GEN = {
  vocab: 2048,
  d: 256,
  ff: 688,
  layers: 6,
  heads: 8,
  kvHeads: 4,
  tied: false,
  prompt: 32,
  tokens: 128,
  reps: 5,
};
const SAMPLING = { temperature: 1, topK: 40, topP: 0.95 };

const only = (() => {
  const i = process.argv.indexOf("--only");
  return i >= 0 ? new Set(process.argv[i + 1].split(",")) : null;
})();
const want = (name: string) => only === null || only.has(name);

function torchReference(): {
  train_tokens_per_s: number;
  forward_tokens_per_s: number;
  torch: string;
} | null {
  if (!existsSync(TORCH)) return null;
  try {
    const out = execFileSync(
      TORCH,
      [join(ROOT, "scripts/golden/bench_torch_reference.py"), JSON.stringify({ ...TRAIN, threads })],
      {
        encoding: "utf8",
        env: {
          ...process.env,
          OMP_NUM_THREADS: String(threads),
          OPENBLAS_NUM_THREADS: String(threads),
          MKL_NUM_THREADS: String(threads),
        },
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 600_000,
      },
    );
    return JSON.parse(out.trim().split("\n").pop()!);
  } catch {
    return null;
  }
}

function trainModel() {
  const shape = makeShape({
    vocabSize: TRAIN.vocab,
    hiddenSize: TRAIN.d,
    intermediateSize: TRAIN.ff,
    layers: TRAIN.layers,
    heads: TRAIN.heads,
    kvHeads: TRAIN.kvHeads,
    tieWordEmbeddings: TRAIN.tied,
  });
  const model = LlamaModel.init(shape, 0, 0.02);
  model.pinWeights();
  return model;
}

function randomRows(n: number, len: number, vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: len }, () => rng.int(vocab)));
}

const threads = Number(process.env.EMLAB_THREADS);
const torch = want("train") || want("forward") ? torchReference() : null;

if (want("matmul")) emit((await benchMatmul()) as Figure);

if (want("forward")) {
  const model = trainModel();
  const rows = randomRows(TRAIN.batch, TRAIN.seq, TRAIN.vocab, 1);
  noGrad(() => model.forward(rows));
  const s = best(TRAIN.steps, () => noGrad(() => model.forward(rows)));
  emit(
    fig("forward_tokens_per_s", (TRAIN.batch * TRAIN.seq) / s, torch?.forward_tokens_per_s ?? null, {
      ...TRAIN,
      params: model.parameterCount(),
      threads,
      pinned_weights: true,
      reference_impl: torch ? `torch ${torch.torch} (${TORCH}), ${threads} thread(s)` : null,
    }),
  );
}

if (want("train")) {
  const model = trainModel();
  const examples = randomRows(TRAIN.batch * 4, TRAIN.seq + 1, TRAIN.vocab, 2).map((ids) => ({ ids }));
  const trainer = new Trainer(model, examples, {
    lr: 1e-3,
    batchSize: TRAIN.batch,
    steps: 1000,
    maxSeqLen: TRAIN.seq,
  });
  trainer.trainStep();
  trainer.trainStep();
  // Best single step, as the torch reference measures it.
  const s = best(TRAIN.steps, () => trainer.trainStep());
  const rssMb = process.resourceUsage().maxRSS / 1024;
  emit(
    fig("train_tokens_per_s", (TRAIN.batch * TRAIN.seq) / s, torch?.train_tokens_per_s ?? null, {
      ...TRAIN,
      params: model.parameterCount(),
      threads,
      peak_rss_mb: Math.round(rssMb),
      pinned_weights: true,
      optimizer: "AdamW + clip 1.0",
      reference_impl: torch ? `torch ${torch.torch} (${TORCH}), ${threads} thread(s), same forward` : null,
    }),
  );
}

if (want("generate")) {
  const shape = makeShape({
    vocabSize: GEN.vocab,
    hiddenSize: GEN.d,
    intermediateSize: GEN.ff,
    layers: GEN.layers,
    heads: GEN.heads,
    kvHeads: GEN.kvHeads,
    tieWordEmbeddings: GEN.tied,
  });
  const model = LlamaModel.init(shape, 3, 0.02);
  model.pinWeights();
  const prompt = randomRows(1, GEN.prompt, GEN.vocab, 4)[0];
  generate(model, prompt, { maxTokens: 8, seed: 1, ...SAMPLING });
  let produced = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const s = best(GEN.reps, () => {
    produced = generate(model, prompt, { maxTokens: GEN.tokens, seed: 1, ...SAMPLING })[0].tokens.length;
  });
  const cpuPerWall = cpuSeconds(cpu0) / ((performance.now() - wall0) / 1000);
  const ref = await llamaCppReference(model, prompt);
  emit(
    fig("generate_tokens_per_s", produced / s, ref?.tokensPerS ?? null, {
      ...GEN,
      params: model.parameterCount(),
      threads,
      batch: 1,
      sampling: SAMPLING,
      includes_prefill: true,
      pinned_weights: true,
      emlab_tokens: produced,
      emlab_cpu_per_wall: Math.round(cpuPerWall * 100) / 100,
      reference_tokens: ref?.tokens ?? null,
      reference_cpu_per_wall: ref ? Math.round(ref.cpuPerWall * 100) / 100 : null,
      reference_impl:
        ref === null ? "node-llama-cpp not installed (or no GGUF writer)" : "node-llama-cpp, threads: 1",
    }),
  );
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

/** Decode speed of node-llama-cpp on the same model exported to GGUF; null when unavailable. */
async function llamaCppReference(
  model: InstanceType<typeof LlamaModel>,
  prompt: number[],
): Promise<{ tokensPerS: number; tokens: number; cpuPerWall: number } | null> {
  let lib: typeof import("node-llama-cpp");
  try {
    lib = await import("node-llama-cpp");
  } catch {
    return null;
  }
  const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { saveModel } = await import("../src/engine/pretrained.ts");
  const { exportGguf } = await import("../src/engine/export.ts");
  const { BYTE_TO_CHAR } = await import("../src/engine/io/tokenizer/byte-level.ts");
  const dir = mkdtempSync(join(tmpdir(), "emlab-bench-gguf-"));
  try {
    // GGUF needs a byte-level BPE tokenizer: 256 byte tokens (ids past 256 stay unused).
    saveModel(model, dir);
    const vocab: Record<string, number> = {};
    BYTE_TO_CHAR.forEach((c, i) => {
      vocab[c] = i;
    });
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    writeFileSync(
      join(dir, "tokenizer.json"),
      JSON.stringify({
        version: "1.0",
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: { type: "BPE", vocab, merges: [] },
      }),
    );
    const file = join(dir, "model.gguf");
    exportGguf(dir, file);
    const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
    const m = await llama.loadModel({ modelPath: file });
    const ctx = await m.createContext({ contextSize: 512, threads: 1, batchSize: 512 });
    const run = async (tokens: number): Promise<{ s: number; n: number }> => {
      const seq = ctx.getSequence();
      const t0 = performance.now();
      let n = 0;
      // yieldEogToken: an end-of-generation token is counted and generation goes on, as in emlab.
      for await (const _ of seq.evaluate(
        prompt.map((t) => t % 256) as never,
        {
          ...SAMPLING,
          seed: 1,
          yieldEogToken: true,
        } as never,
      )) {
        if (++n >= tokens) break;
      }
      const s = (performance.now() - t0) / 1000;
      seq.dispose();
      return { s, n };
    };
    await run(8);
    let bestRun = { s: Number.POSITIVE_INFINITY, n: 0 };
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let rep = 0; rep < GEN.reps; rep++) {
      const r = await run(GEN.tokens);
      if (r.s < bestRun.s) bestRun = r;
    }
    const cpuPerWall = cpuSeconds(cpu0) / ((performance.now() - wall0) / 1000);
    await ctx.dispose();
    await m.dispose();
    return { tokensPerS: bestRun.n / bestRun.s, tokens: bestRun.n, cpuPerWall };
  } catch (e) {
    process.stderr.write(`node-llama-cpp reference failed: ${(e as Error).message}\n`);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
