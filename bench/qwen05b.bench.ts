/**
 * The engine at the Qwen2-0.5B shape against Debian's python3-torch and node-llama-cpp.
 *
 *   npx tsx bench/qwen05b.bench.ts [--shape full|tiny] [--only prefill,decode,load,lora]
 *                                  [--threads 1,2] [--keep]
 *
 * The model is made here: seeded random weights in the Qwen2-0.5B shape (494 M parameters,
 * hidden 896, 24 layers, 14 / 2 heads, intermediate 4864, vocab 151936, tied embeddings,
 * q/k/v bias), saved with the engine's saveModel under bench/out/ with a byte-level BPE
 * tokenizer of the full vocabulary (256 byte tokens, the rest unreachable fillers; every
 * side is fed token ids) and a ChatML template, and exported to F32 and F16 GGUF with the
 * engine's exportGguf. All of it is reused when present; `--keep` keeps bench/out/ after
 * the run (by default it is deleted). `--shape tiny` (hidden 128, 4 layers) is for
 * trying the bench out.
 *
 * Each side and thread count runs in its own child process, so its load time and peak RSS
 * (VmHWM of /proc/self/status) are its own; inference (load, prefill, decode) and the LoRA
 * step are separate children.
 *   load: emlab's local-provider load (loadLocalEngine: template, weights, tokenizer, pinning
 *     into kernel memory); torch: reading model.safetensors and viewing its tensors;
 *     llama.cpp: loadModel (mmap) + createContext. Warm file cache in every case.
 *   prefill: one forward over the 128-token prompt into a KV cache, last position's logits;
 *     best of `reps`. emlab: generate() with maxTokens 1 (prefill + one argmax).
 *   decode: 32 single-token steps after the prompt, greedy. emlab: best generate() with
 *     maxTokens 33 minus best prefill (so it includes the decoder's per-call setup);
 *     torch: the 32 steps timed directly; llama.cpp: 32 evaluations after
 *     evaluateWithoutGeneratingNewTokens of the prompt.
 *   lora: one optimizer step of rank-8 LoRA on q/k/v/o (alpha 16, AdamW, clip 1.0) over
 *     4 rows of 256 tokens, best timed step after one warm-up step; torch: plain torch LoRA
 *     matrices on the same modules (peft is not importable from /usr/bin/python3).
 * Greedy check: 32 greedy tokens after a 32-token prompt from emlab and torch, with torch's
 * top-1 minus top-2 logit margin at the first difference (a tiny margin is an argmax tie).
 *
 * Output: one JSON line per figure {"figure", "threads", "emlab", "reference",
 * "reference_impl", "ratio", "config"}, then a markdown table on stderr.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { best } from "./timing.ts";

const ROOT = join(import.meta.dirname, "..");
const TORCH = "/usr/bin/python3";
const TSX = join(ROOT, "node_modules/.bin/tsx");

// ---- options and shapes ----

const SHAPES = {
  full: { vocab: 151936, hidden: 896, layers: 24, heads: 14, kvHeads: 2, ff: 4864, reps: 2, loraSteps: 1 },
  tiny: { vocab: 4096, hidden: 128, layers: 4, heads: 4, kvHeads: 2, ff: 344, reps: 3, loraSteps: 2 },
} as const;
type ShapeName = keyof typeof SHAPES;

const PROMPT = 128;
const DECODE = 32;
const GREEDY_PROMPT = 32;
const GREEDY_TOKENS = 32;
const LORA = {
  rank: 8,
  alpha: 16,
  targets: ["q_proj", "k_proj", "v_proj", "o_proj"],
  batch: 4,
  seq: 256,
  lr: 1e-4,
};
const PARTS = ["prefill", "decode", "load", "lora"] as const;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  return v;
}

const shapeName = z.enum(["full", "tiny"]).parse(argValue("--shape") ?? "full") as ShapeName;
const SHAPE = SHAPES[shapeName];
const OUT = join(ROOT, "bench/out", `qwen05b-${shapeName}`);
const MODEL_DIR = join(OUT, "model");
const GGUF = { F32: join(OUT, "model-f32.gguf"), F16: join(OUT, "model-f16.gguf") } as const;

/** Deterministic token ids (the same on every side: passed to the children). */
async function tokenIds(n: number, seed: number): Promise<number[]> {
  const { Rng } = await import("../src/engine/rng.ts");
  const rng = new Rng(seed);
  // Below the three added special tokens at the top of the vocabulary.
  return Array.from({ length: n }, () => rng.int(SHAPE.vocab - 3));
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

// ---- the model directory and GGUF files ----

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

async function ensureModel(): Promise<void> {
  const { BYTE_TO_CHAR } = await import("../src/engine/io/tokenizer/byte-level.ts");
  if (!existsSync(join(MODEL_DIR, "model.safetensors"))) {
    const { makeShape } = await import("../src/engine/config.ts");
    const { LlamaModel } = await import("../src/engine/model.ts");
    const { saveModel } = await import("../src/engine/pretrained.ts");
    const { Rng } = await import("../src/engine/rng.ts");
    const V = SHAPE.vocab;
    const shape = makeShape({
      modelType: "qwen2",
      vocabSize: V,
      hiddenSize: SHAPE.hidden,
      intermediateSize: SHAPE.ff,
      layers: SHAPE.layers,
      heads: SHAPE.heads,
      kvHeads: SHAPE.kvHeads,
      tieWordEmbeddings: true,
      qkvBias: true,
      ropeTheta: 1_000_000,
      rmsNormEps: 1e-6,
      maxPositions: 32768,
      eosTokenIds: [V - 3],
    });
    const t0 = performance.now();
    const model = LlamaModel.init(shape, 0, 0.02);
    // Non-zero q/k/v biases, so the bias path is part of what is compared.
    const rng = new Rng(1);
    for (const [name, t] of model.params)
      if (name.endsWith(".bias")) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * 0.02;
    mkdirSync(MODEL_DIR, { recursive: true });
    writeTokenizer(BYTE_TO_CHAR, V);
    saveModel(model, MODEL_DIR);
    process.stderr.write(
      `made ${MODEL_DIR} (${(model.parameterCount() / 1e6).toFixed(1)} M params) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  }
  const { exportGguf } = await import("../src/engine/export.ts");
  for (const [dtype, file] of Object.entries(GGUF) as ["F32" | "F16", string][]) {
    if (existsSync(file)) continue;
    const t0 = performance.now();
    exportGguf(MODEL_DIR, file, { dtype, name: `qwen05b-${shapeName}` });
    process.stderr.write(`exported ${file} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
}

/** A byte-level BPE tokenizer of vocabulary size V: 256 byte tokens, fillers, 3 ChatML specials. */
function writeTokenizer(byteToChar: readonly string[], V: number): void {
  const vocab: Record<string, number> = {};
  byteToChar.forEach((c, i) => {
    vocab[c] = i;
  });
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  for (let id = 256; id < V - specials.length; id++) vocab[`tok${id}`] = id;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const added = specials.map((content, i) => ({
    id: V - specials.length + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  writeFileSync(
    join(MODEL_DIR, "tokenizer.json"),
    JSON.stringify({
      version: "1.0",
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: null,
      decoder: byteLevel,
      model: { type: "BPE", vocab, merges: [] },
    }),
  );
  writeFileSync(
    join(MODEL_DIR, "tokenizer_config.json"),
    `${JSON.stringify({ eos_token: "<|im_end|>", pad_token: "<|endoftext|>", chat_template: CHATML }, null, 2)}\n`,
  );
}

// ---- children ----

const ChildArgs = z.object({
  kind: z.enum(["engine-infer", "engine-lora", "llama-infer"]),
  threads: z.number().int().positive(),
  dtype: z.enum(["F32", "F16"]).optional(),
});
type ChildArgs = z.infer<typeof ChildArgs>;

const InferResult = z.object({
  load_s: z.number(),
  prefill_s: z.number(),
  decode_s: z.number(),
  peak_rss_mb: z.number(),
  greedy: z.array(z.number()).optional(),
  greedy_margins: z.array(z.number()).optional(),
  torch: z.string().optional(),
  context_s: z.number().optional(),
});
type InferResult = z.infer<typeof InferResult>;
const LoraResult = z.object({
  load_s: z.number(),
  step_s: z.number(),
  losses: z.array(z.number()),
  peak_rss_mb: z.number(),
  torch: z.string().optional(),
});
type LoraResult = z.infer<typeof LoraResult>;

async function engineInfer(): Promise<InferResult> {
  const { loadLocalEngine } = await import("../src/models/local.ts");
  const { generate } = await import("../src/engine/generate.ts");
  const prompt = await tokenIds(PROMPT, 11);
  const t0 = performance.now();
  const { model } = loadLocalEngine(MODEL_DIR);
  const load_s = (performance.now() - t0) / 1000;
  const greedyRun = (p: number[], maxTokens: number) => generate(model, p, { maxTokens, temperature: 0 });
  greedyRun(prompt.slice(0, 8), 2);
  const prefill_s = best(SHAPE.reps, () => greedyRun(prompt, 1));
  const gen_s = best(SHAPE.reps, () => greedyRun(prompt, DECODE + 1));
  const greedy = greedyRun(prompt.slice(0, GREEDY_PROMPT), GREEDY_TOKENS)[0].tokens;
  return { load_s, prefill_s, decode_s: gen_s - prefill_s, peak_rss_mb: peakRssMb(), greedy };
}

async function loraRows(): Promise<number[][]> {
  // Two batches of rows, so the warm-up and the timed step see different data.
  const ids = await tokenIds(2 * LORA.batch * (LORA.seq + 1), 12);
  return Array.from({ length: 2 * LORA.batch }, (_, i) =>
    ids.slice(i * (LORA.seq + 1), (i + 1) * (LORA.seq + 1)),
  );
}

async function engineLora(): Promise<LoraResult> {
  const { loadModel } = await import("../src/engine/pretrained.ts");
  const { addLora } = await import("../src/engine/peft.ts");
  const { Trainer } = await import("../src/engine/train.ts");
  const rows = await loraRows();
  const t0 = performance.now();
  // The fine-tune path (src/finetune/local.ts): loadModel + addLora, weights not pinned.
  const model = loadModel(MODEL_DIR);
  const load_s = (performance.now() - t0) / 1000;
  addLora(model, { rank: LORA.rank, alpha: LORA.alpha, targets: LORA.targets as never, seed: 0 });
  const trainer = new Trainer(
    model,
    rows.map((ids) => ({ ids })),
    { lr: LORA.lr, batchSize: LORA.batch, steps: 1000, maxSeqLen: LORA.seq, shuffle: false },
  );
  const losses = [trainer.trainStep().loss];
  let step_s = Number.POSITIVE_INFINITY;
  for (let i = 0; i < SHAPE.loraSteps; i++) {
    const t = performance.now();
    losses.push(trainer.trainStep().loss);
    step_s = Math.min(step_s, (performance.now() - t) / 1000);
  }
  return { load_s, step_s, losses, peak_rss_mb: peakRssMb() };
}

async function llamaInfer(args: ChildArgs): Promise<InferResult> {
  const lib = await import("node-llama-cpp");
  const prompt = await tokenIds(PROMPT, 11);
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const t0 = performance.now();
  const m = await llama.loadModel({ modelPath: GGUF[args.dtype ?? "F32"] });
  const load_s = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const ctx = await m.createContext({
    contextSize: PROMPT + DECODE + 16,
    threads: args.threads,
    batchSize: PROMPT,
  });
  const context_s = (performance.now() - t1) / 1000;
  let prefill_s = Number.POSITIVE_INFINITY;
  let decode_s = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < SHAPE.reps + 1; rep++) {
    const seq = ctx.getSequence();
    const t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt as never);
    const p = (performance.now() - t) / 1000;
    const td = performance.now();
    let n = 0;
    // yieldEogToken: an end-of-generation token is one more step, as on the other sides.
    for await (const _ of seq.evaluate(
      [prompt[PROMPT - 1]] as never,
      {
        temperature: 0,
        yieldEogToken: true,
      } as never,
    )) {
      if (++n >= DECODE) break;
    }
    const d = (performance.now() - td) / 1000;
    seq.dispose();
    // The first round warms up.
    if (rep > 0) {
      prefill_s = Math.min(prefill_s, p);
      decode_s = Math.min(decode_s, d);
    }
  }
  await ctx.dispose();
  await m.dispose();
  return { load_s: load_s + context_s, context_s, prefill_s, decode_s, peak_rss_mb: peakRssMb() };
}

async function childMain(args: ChildArgs): Promise<void> {
  const res =
    args.kind === "engine-infer"
      ? await engineInfer()
      : args.kind === "engine-lora"
        ? await engineLora()
        : await llamaInfer(args);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

/** Runs one side in its own process; the last stdout line is its JSON result. */
function runChild<T>(
  label: string,
  cmd: string,
  argv: string[],
  threads: number,
  schema: z.ZodType<T>,
): T | null {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, {
    cwd: ROOT,
    encoding: "utf8",
    env: {
      ...process.env,
      EMLAB_THREADS: String(threads),
      OMP_NUM_THREADS: String(threads),
      OPENBLAS_NUM_THREADS: String(threads),
      MKL_NUM_THREADS: String(threads),
    },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 3_600_000,
  });
  const wall = ((performance.now() - t0) / 1000).toFixed(1);
  const last = r.stdout?.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !last.startsWith("{")) {
    process.stderr.write(
      `${label}: failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ""}) after ${wall} s\n${(r.stderr ?? "").slice(-2000)}\n`,
    );
    return null;
  }
  process.stderr.write(`${label}: done in ${wall} s\n`);
  return schema.parse(JSON.parse(last));
}

function engineChild<T>(
  kind: ChildArgs["kind"],
  threads: number,
  schema: z.ZodType<T>,
  dtype?: string,
): T | null {
  const argv = [
    import.meta.filename,
    "--shape",
    shapeName,
    "--child",
    JSON.stringify({ kind, threads, dtype }),
  ];
  return runChild(
    `${kind}${dtype ? ` ${dtype}` : ""} (${threads} thread${threads > 1 ? "s" : ""})`,
    TSX,
    argv,
    threads,
    schema,
  );
}

function torchChild<T>(
  mode: "infer" | "lora",
  threads: number,
  schema: z.ZodType<T>,
  extra: object,
): T | null {
  if (!existsSync(TORCH)) return null;
  const args = { mode, dir: MODEL_DIR, threads, ...extra };
  return runChild(
    `torch ${mode} (${threads} thread${threads > 1 ? "s" : ""})`,
    TORCH,
    [join(ROOT, "bench/qwen05b_torch.py"), JSON.stringify(args)],
    threads,
    schema,
  );
}

// ---- figures ----

interface Figure {
  figure: string;
  threads: number;
  emlab: number | null;
  reference: number | null;
  reference_impl: string;
  ratio: number | null;
  config: Record<string, unknown>;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function parentMain(): Promise<void> {
  const onlyArg = argValue("--only");
  const only = new Set(onlyArg ? z.array(z.enum(PARTS)).parse(onlyArg.split(",")) : PARTS);
  const threadList = z
    .array(z.coerce.number().int().positive())
    .parse((argValue("--threads") ?? "1,2").split(","));
  const keep = process.argv.includes("--keep");
  const wantInfer = only.has("prefill") || only.has("decode") || only.has("load");

  await ensureModel();
  const prompt = await tokenIds(PROMPT, 11);
  const rows = await loraRows();
  const figures: Figure[] = [];
  const llamaVersion = JSON.parse(
    readFileSync(join(ROOT, "node_modules/node-llama-cpp/package.json"), "utf8"),
  ).version as string;
  let torchVersion = "torch";
  const config = { shape: shapeName, ...SHAPE, prompt: PROMPT, decode: DECODE };
  const emit = (f: Omit<Figure, "ratio">) => {
    const full = {
      ...f,
      emlab: f.emlab === null ? null : round(f.emlab),
      reference: f.reference === null ? null : round(f.reference),
      ratio: f.emlab !== null && f.reference ? round(f.emlab / f.reference) : null,
    };
    figures.push(full);
    console.log(JSON.stringify(full));
  };
  let greedyReport: string | null = null;

  for (const threads of threadList) {
    if (wantInfer) {
      const eng = engineChild("engine-infer", threads, InferResult);
      const torch = torchChild("infer", threads, InferResult, {
        prompt,
        decode: DECODE,
        reps: SHAPE.reps,
        greedy_prompt: prompt.slice(0, GREEDY_PROMPT),
        greedy_tokens: GREEDY_TOKENS,
      });
      if (torch?.torch) torchVersion = `torch ${torch.torch}`;
      const llama = {
        F32: engineChild("llama-infer", threads, InferResult, "F32"),
        F16: engineChild("llama-infer", threads, InferResult, "F16"),
      };
      const refs: [string, InferResult | null][] = [
        [torchVersion, torch],
        [`node-llama-cpp ${llamaVersion} F32 GGUF`, llama.F32],
        [`node-llama-cpp ${llamaVersion} F16 GGUF`, llama.F16],
      ];
      const per = (
        figure: string,
        value: (r: InferResult) => number,
        part: (typeof PARTS)[number],
        extra: (r: InferResult | null) => Record<string, unknown> = () => ({}),
      ) => {
        if (!only.has(part)) return;
        for (const [impl, ref] of refs)
          emit({
            figure,
            threads,
            emlab: eng ? value(eng) : null,
            reference: ref ? value(ref) : null,
            reference_impl: impl,
            config: { ...config, ...extra(ref) },
          });
      };
      per("prefill_tokens_per_s", (r) => PROMPT / r.prefill_s, "prefill");
      per(
        "decode_tokens_per_s",
        (r) => DECODE / r.decode_s,
        "decode",
        () => ({ greedy: true }),
      );
      per(
        "load_s",
        (r) => r.load_s,
        "load",
        (r) => (r?.context_s !== undefined ? { reference_context_s: round(r.context_s) } : {}),
      );
      per("infer_peak_rss_mb", (r) => r.peak_rss_mb, "load");
      if (eng?.greedy && torch?.greedy && greedyReport === null)
        greedyReport = compareGreedy(eng.greedy, torch);
    }
    if (only.has("lora")) {
      const eng = engineChild("engine-lora", threads, LoraResult);
      const torch = torchChild("lora", threads, LoraResult, {
        rows,
        batch: LORA.batch,
        rank: LORA.rank,
        alpha: LORA.alpha,
        targets: LORA.targets,
        lr: LORA.lr,
        warmup: 1,
        steps: SHAPE.loraSteps,
      });
      if (torch?.torch) torchVersion = `torch ${torch.torch}`;
      const loraConfig = (r: LoraResult | null) => ({
        ...config,
        lora: LORA,
        emlab_losses: eng?.losses.map((x) => round(x, 4)),
        reference_losses: r?.losses.map((x) => round(x, 4)),
      });
      const tokens = LORA.batch * LORA.seq;
      emit({
        figure: "lora_train_tokens_per_s",
        threads,
        emlab: eng ? tokens / eng.step_s : null,
        reference: torch ? tokens / torch.step_s : null,
        reference_impl: `${torchVersion}, plain LoRA matrices`,
        config: {
          ...loraConfig(torch),
          emlab_step_s: eng && round(eng.step_s),
          reference_step_s: torch && round(torch.step_s),
        },
      });
      emit({
        figure: "lora_peak_rss_mb",
        threads,
        emlab: eng?.peak_rss_mb ?? null,
        reference: torch?.peak_rss_mb ?? null,
        reference_impl: `${torchVersion}, plain LoRA matrices`,
        config: {
          ...config,
          emlab_load_s: eng && round(eng.load_s),
          reference_load_s: torch && round(torch.load_s),
        },
      });
    }
  }
  process.stderr.write(`\n${markdownTable(figures)}\n`);
  if (greedyReport) process.stderr.write(`\n${greedyReport}\n`);
  if (!keep) rmSync(OUT, { recursive: true, force: true });
}

function compareGreedy(engine: number[], torch: InferResult): string {
  const ref = torch.greedy ?? [];
  const at = engine.findIndex((t, i) => t !== ref[i]);
  const line =
    at < 0
      ? `greedy: emlab and torch agree on all ${engine.length} tokens after the ${GREEDY_PROMPT}-token prompt`
      : `greedy: emlab and torch differ first at token ${at} of ${engine.length} (emlab ${engine[at]}, torch ${ref[at]}; torch's top-1 minus top-2 logit there ${torch.greedy_margins?.[at]?.toExponential(2)})`;
  const out = {
    figure: "greedy_match",
    emlab: engine,
    reference: ref,
    first_difference: at,
    margins: torch.greedy_margins,
  };
  console.log(JSON.stringify(out));
  return line;
}

function markdownTable(figures: Figure[]): string {
  const fmt = (x: number | null) =>
    x === null ? "—" : x >= 100 ? Math.round(x).toLocaleString("en-US") : String(round(x));
  const rows = new Map<
    string,
    { figure: string; threads: number; emlab: number | null; refs: Map<string, Figure> }
  >();
  const impls: string[] = [];
  for (const f of figures) {
    const key = `${f.figure}|${f.threads}`;
    if (!rows.has(key))
      rows.set(key, { figure: f.figure, threads: f.threads, emlab: f.emlab, refs: new Map() });
    const short = f.reference_impl.includes("F16")
      ? "llama.cpp F16"
      : f.reference_impl.includes("F32")
        ? "llama.cpp F32"
        : "torch";
    if (!impls.includes(short)) impls.push(short);
    rows.get(key)!.refs.set(short, f);
  }
  const head = `| figure | threads | emlab | ${impls.join(" | ")} | ${impls.map((i) => `emlab / ${i}`).join(" | ")} |`;
  const sep = `|${"---|".repeat(3 + 2 * impls.length)}`;
  const body = [...rows.values()].map(
    (r) =>
      `| \`${r.figure}\` | ${r.threads} | ${fmt(r.emlab)} | ${impls.map((i) => fmt(r.refs.get(i)?.reference ?? null)).join(" | ")} | ${impls.map((i) => fmt(r.refs.get(i)?.ratio ?? null)).join(" | ")} |`,
  );
  return [head, sep, ...body].join("\n");
}

const childArg = argValue("--child");
if (childArg !== undefined) await childMain(ChildArgs.parse(JSON.parse(childArg)));
else await parentMain();
