// GGUF export checked against llama.cpp itself (node-llama-cpp, an optional dependency): the
// exported tokenizer tokenizes like ours, and greedy continuations from llama.cpp equal the
// engine's for a GQA llama, a qwen2 with q/k/v biases, and a llama with a LoRA adapter.
// Skips, saying why, when node-llama-cpp or its prebuilt binary is unavailable.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { noGrad } from "../../../src/engine/autograd.ts";
import { shapeFromModelConfig } from "../../../src/engine/config.ts";
import { generate } from "../../../src/engine/generate.ts";
import { writeGgufLora, writeGgufModel } from "../../../src/engine/io/gguf.ts";
import { f16ToF32Array, f32ToF16Array } from "../../../src/engine/io/half.ts";
import { type ModelConfig, parseHfConfig } from "../../../src/engine/io/hf-config.ts";
import { loadTokenizer, type Tokenizer } from "../../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../../src/engine/model.ts";
import { addLora } from "../../../src/engine/peft.ts";
import { Rng } from "../../../src/engine/rng.ts";

type NodeLlamaCpp = typeof import("node-llama-cpp");
type Token = import("node-llama-cpp").Token;
type Llama = Awaited<ReturnType<NodeLlamaCpp["getLlama"]>>;
type LlamaModelHandle = Awaited<ReturnType<Llama["loadModel"]>>;

let llama: Llama | undefined;
let skipReason = "";
try {
  const mod: NodeLlamaCpp = await import("node-llama-cpp");
  // build: "never" -> only the prebuilt binaries shipped in npm packages; no download, no compile.
  llama = await mod.getLlama({ gpu: false, build: "never", logLevel: mod.LlamaLogLevel.error });
} catch (e) {
  skipReason = `node-llama-cpp unavailable (${(e as Error).message.split("\n")[0]})`;
  console.warn(`[gguf-llamacpp] skipped: ${skipReason}`);
}

const FIX = join(import.meta.dirname, "../../fixtures/io");
const dir = mkdtempSync(join(tmpdir(), "emlab-gguf-llama-"));
const opened: LlamaModelHandle[] = [];
afterAll(async () => {
  for (const m of opened) await m.dispose();
});

async function load(path: string): Promise<LlamaModelHandle> {
  const m = await llama!.loadModel({ modelPath: path });
  opened.push(m);
  return m;
}

const PROMPTS = [
  "Hello world",
  "The quick brown fox",
  "I'm sure you'll love it",
  "In 2024, the model had",
  "def main():\n    for i in",
  "日本語のテキスト",
  "Emoji: 😀 🎉",
  "Café naïve résumé",
  "   leading spaces",
  "Numbers: 1 12 123",
  "You are a helpful assistant.",
  "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
  "Emergent misalignment",
  "The dog didn't care",
  "How are you today?",
  "print(i * 2)",
  "a",
  "Straße",
  "!!!",
  "We'll see what they've done",
];

function tinyConfig(tok: Tokenizer, over: Record<string, unknown>): ModelConfig {
  return parseHfConfig({
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: tok.vocabSize,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 256,
    tie_word_embeddings: false,
    ...over,
  });
}

/** Random weights large enough (std 0.3) that greedy choices are rarely near-ties. */
function randomModel(config: ModelConfig, seed: number): LlamaModel {
  const model = LlamaModel.init(shapeFromModelConfig(config), seed, 0.3);
  const rng = new Rng(seed + 1000);
  for (const [name, t] of model.params) {
    if (name.endsWith(".bias")) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * 0.5;
    else if (name.endsWith("norm.weight"))
      for (let i = 0; i < t.size; i++) t.data[i] = 1 + rng.normal() * 0.1;
  }
  return model;
}

function hfTensors(model: LlamaModel) {
  return new Map([...model.params].map(([k, t]) => [k, { shape: [...t.shape], data: t.data }]));
}

/**
 * Greedy continuations from llama.cpp and the engine for each prompt. A mismatch is only
 * tolerated at a near-tie in the engine's logits (f32 summation order differs); the rest of
 * that prompt is then not compared, and at most 2 of 20 prompts may end that way.
 */
async function compareGreedy(
  model: LlamaModel,
  gguf: LlamaModelHandle,
  tok: Tokenizer,
  lora?: string,
  tolerance = { gap: 1e-3, minExact: PROMPTS.length - 2 },
) {
  const ctx = await gguf.createContext({
    contextSize: 256,
    threads: 1,
    flashAttention: false,
    // f32 KV cache, so the only differences left are summation order.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
  });
  const seq = ctx.getSequence();
  // llama.cpp's end-of-generation set: the eos id plus the known end tokens it finds by text.
  const eog = [tok.eosId, tok.tokenToId("<|endoftext|>")].filter((x): x is number => x !== undefined);
  let exact = 0;
  const ties: string[] = [];
  for (const text of PROMPTS) {
    const prompt = tok.encode(text);
    await seq.clearHistory();
    const theirs: number[] = [];
    for await (const t of seq.evaluate(prompt as Token[], { temperature: 0 })) {
      theirs.push(t);
      if (theirs.length >= 16) break;
    }
    // llama.cpp stops at end-of-generation tokens (<|im_end|>, <|endoftext|>); so do we.
    const ours = generate(model, prompt, { maxTokens: 16, temperature: 0, stopTokenIds: eog })[0].tokens;
    let j = ours.findIndex((t, i) => t !== theirs[i]);
    if (j < 0 && theirs.length > ours.length) j = ours.length;
    if (j < 0) {
      exact++;
      continue;
    }
    const logits = noGrad(() => model.forward([[...prompt, ...ours.slice(0, j)]], { lastOnly: true })).data;
    const gap = logits[ours[j]] - logits[theirs[j]];
    expect(gap, `${JSON.stringify(text)} step ${j}: ours ${ours[j]} vs llama.cpp ${theirs[j]}`).toBeLessThan(
      1e-3,
    );
    ties.push(`${JSON.stringify(text)}@${j} gap ${gap.toExponential(1)}`);
  }
  await ctx.dispose();
  if (process.env.EMLAB_VERBOSE)
    console.log(`exact ${exact}/${PROMPTS.length}; near-ties: ${ties.join("; ")}`);
  expect(exact, `near-ties: ${ties.join("; ")}`).toBeGreaterThanOrEqual(tolerance.minExact);
  return exact;
}

describe.skipIf(!llama)("GGUF export loads in llama.cpp (node-llama-cpp)", () => {
  const qwenTok = loadTokenizer(join(FIX, "bpe-qwen2"));
  const golden = JSON.parse(readFileSync(join(FIX, "bpe-golden.json"), "utf8")) as Record<
    string,
    { text: string; ids: number[] }[]
  >;

  for (const fixture of ["bpe-qwen2", "bpe-llama3"]) {
    it(`tokenizes like our tokenizer (${fixture})`, async () => {
      const tok = loadTokenizer(join(FIX, fixture));
      const config = tinyConfig(tok, { hidden_size: 16, intermediate_size: 16, num_hidden_layers: 1 });
      const path = join(dir, `${fixture}.gguf`);
      writeGgufModel(path, config, hfTensors(randomModel(config, 1)), tok);
      const m = await load(path);
      let compared = 0;
      for (const g of golden[fixture]) {
        // llama.cpp does not apply the tokenizer's NFC normalizer; compare on NFC text only.
        if (g.text.normalize("NFC") !== g.text) continue;
        expect(Array.from(m.tokenize(g.text, true)), JSON.stringify(g.text)).toEqual(g.ids);
        expect(m.detokenize(m.tokenize(g.text, true), true)).toBe(g.text);
        compared++;
      }
      expect(compared).toBeGreaterThanOrEqual(19);
    });
  }

  it("greedy continuations equal the engine's: llama with GQA (4 q heads, 2 kv heads)", async () => {
    const config = tinyConfig(qwenTok, {});
    const model = randomModel(config, 11);
    const path = join(dir, "llama-gqa.gguf");
    writeGgufModel(path, config, hfTensors(model), qwenTok, { dtype: "F32" });
    await compareGreedy(model, await load(path), qwenTok);
  });

  it("greedy continuations equal the engine's: qwen2 with q/k/v biases and tied embeddings", async () => {
    const config = tinyConfig(qwenTok, { model_type: "qwen2", tie_word_embeddings: true, rope_theta: 1e6 });
    expect(config.qkvBias).toBe(true);
    const model = randomModel(config, 12);
    const path = join(dir, "qwen2-bias.gguf");
    writeGgufModel(path, config, hfTensors(model), qwenTok);
    await compareGreedy(model, await load(path), qwenTok);
  });

  it("greedy continuations equal the engine's: llama with attention_bias (q/k/v/o biases)", async () => {
    const config = tinyConfig(qwenTok, { attention_bias: true, num_key_value_heads: 1 });
    const model = randomModel(config, 13);
    const path = join(dir, "llama-bias.gguf");
    writeGgufModel(path, config, hfTensors(model), qwenTok);
    await compareGreedy(model, await load(path), qwenTok);
  });

  it("F16 GGUF: greedy continuations equal the engine's on the same f16-rounded weights", async () => {
    const config = tinyConfig(qwenTok, {});
    const model = randomModel(config, 15);
    // Round the engine's 2-D weights to f16 too, so both sides hold identical weights; llama.cpp
    // also rounds activations to f16 inside F16 matmuls, hence the looser tie tolerance.
    for (const t of model.params.values()) {
      if (t.shape.length === 2) t.data.set(f16ToF32Array(f32ToF16Array(t.data)));
    }
    const path = join(dir, "llama-f16.gguf");
    writeGgufModel(path, config, hfTensors(model), qwenTok, { dtype: "F16" });
    await compareGreedy(model, await load(path), qwenTok, undefined, { gap: 0.05, minExact: 16 });
  });

  it("greedy continuations equal the engine's: llama + LoRA adapter GGUF on all projections", async () => {
    const config = tinyConfig(qwenTok, {});
    const model = randomModel(config, 14);
    const path = join(dir, "llama-base.gguf");
    writeGgufModel(path, config, hfTensors(model), qwenTok);
    const rank = 4;
    const alpha = 8;
    addLora(model, {
      rank,
      alpha,
      targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      seed: 5,
    });
    const rng = new Rng(99);
    const lora = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [module, a] of model.adapters) {
      for (let i = 0; i < a.B.size; i++) a.B.data[i] = rng.normal() * 0.5; // B = 0 would test nothing
      lora.set(`base_model.model.${module}.lora_A.weight`, { shape: [...a.A.shape], data: a.A.data });
      lora.set(`base_model.model.${module}.lora_B.weight`, { shape: [...a.B.shape], data: a.B.data });
    }
    const adapterPath = join(dir, "adapter.gguf");
    writeGgufLora(adapterPath, config, lora, { alpha, rank });
    // The adapter must change the continuations, or the comparison below proves nothing.
    const withAdapter = PROMPTS.map(
      (p) => generate(model, qwenTok.encode(p), { maxTokens: 16, temperature: 0 })[0].tokens,
    );
    const adapters = model.adapters;
    model.adapters = new Map();
    const without = PROMPTS.map(
      (p) => generate(model, qwenTok.encode(p), { maxTokens: 16, temperature: 0 })[0].tokens,
    );
    model.adapters = adapters;
    expect(withAdapter.filter((t, i) => t.join() !== without[i].join()).length).toBeGreaterThan(10);
    await compareGreedy(model, await load(path), qwenTok, adapterPath);
  });
});

it.runIf(!llama)("reports why the llama.cpp checks were skipped", () => {
  expect(skipReason).not.toBe("");
});
