import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  convertHfDirToGguf,
  convertPeftDirToGguf,
  ggufTensorName,
  permuteForLlamaRope,
  writeGgufLora,
  writeGgufModel,
} from "../../../src/engine/io/gguf.ts";
import { GgmlType, GgufType, readGguf, serializeGguf } from "../../../src/engine/io/gguf-format.ts";
import { f32ToBf16Array } from "../../../src/engine/io/half.ts";
import {
  expectedTensorShapes,
  type ModelConfig,
  parseHfConfig,
  writeHfConfig,
} from "../../../src/engine/io/hf-config.ts";
import { writeSafetensors } from "../../../src/engine/io/safetensors.ts";
import { buildWordLevelTokenizer, loadTokenizer } from "../../../src/engine/io/tokenizer.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io");
const tmp = () => mkdtempSync(join(tmpdir(), "emlab-gguf-"));

/** Deterministic pseudo-random values (mulberry32), so tests need no engine RNG. */
function randomTensors(
  config: ModelConfig,
  seed: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
    out.set(name, { shape, data });
  }
  return out;
}

const tiny = (over: Record<string, unknown> = {}) =>
  parseHfConfig({
    model_type: "llama",
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 664,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 128,
    tie_word_embeddings: false,
    ...over,
  });

describe("GGUF container", () => {
  it("round-trips every metadata type, alignment and tensor data", () => {
    const buf = serializeGguf(
      [
        ["a.u32", { type: GgufType.UINT32, value: 7 }],
        ["a.i32", { type: GgufType.INT32, value: -7 }],
        ["a.f32", { type: GgufType.FLOAT32, value: 0.5 }],
        ["a.bool", { type: GgufType.BOOL, value: true }],
        ["a.str", { type: GgufType.STRING, value: "héllo 😀" }],
        ["a.u64", { type: GgufType.UINT64, value: 2n ** 40n }],
        ["a.arr", { type: GgufType.ARRAY, itemType: GgufType.STRING, value: ["x", "y z"] }],
      ],
      [
        { name: "t1", shape: [2, 3], type: GgmlType.F32, data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        { name: "t2", shape: [3], type: GgmlType.F16, data: Float32Array.from([0.5, -1, 65504]) },
      ],
    );
    expect(buf.readUInt32LE(0)).toBe(0x46554747);
    expect(buf.subarray(0, 4).toString()).toBe("GGUF");
    expect(buf.readUInt32LE(4)).toBe(3);
    const dir = tmp();
    const p = join(dir, "x.gguf");
    writeFileSync(p, buf);
    const g = readGguf(p);
    expect(g.metadata.get("a.str")).toBe("héllo 😀");
    expect(g.metadata.get("a.u64")).toBe(2n ** 40n);
    expect(g.metadata.get("a.arr")).toEqual(["x", "y z"]);
    expect(g.metadata.get("a.bool")).toBe(true);
    expect(g.metadataTypes.get("a.f32")).toBe(GgufType.FLOAT32);
    expect(g.tensors.map((t) => [t.name, t.ne, t.offset])).toEqual([
      ["t1", [3, 2], 0],
      ["t2", [3], 32],
    ]);
    expect(Array.from(g.tensors[1].data!)).toEqual([0.5, -1, 65504]);
  });
});

describe("llama.cpp's q/k permutation", () => {
  it("interleaves the two halves of each head (rows), like convert_hf_to_gguf's permute", () => {
    // 2 heads × head_dim 4, 1 column: rows [h0: 0 1 2 3 | h1: 4 5 6 7]
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(permuteForLlamaRope(w, 8, 1, 2))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // with 2 columns each row moves whole
    const w2 = Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(Array.from(permuteForLlamaRope(w2, 4, 2, 1))).toEqual([0, 0, 2, 2, 1, 1, 3, 3]);
  });
});

describe("writeGgufModel", () => {
  const tok = loadTokenizer(join(FIX, "bpe-qwen2"));

  it("writes llama hyperparameters, tokenizer and permuted q/k in GGUF names", () => {
    const config = tiny();
    const tensors = randomTensors(config, 1);
    const p = join(tmp(), "m.gguf");
    writeGgufModel(p, config, tensors, tok, { dtype: "F32" });
    const g = readGguf(p);
    const md = g.metadata;
    expect(md.get("general.architecture")).toBe("llama");
    expect(md.get("llama.attention.head_count")).toBe(4);
    expect(md.get("llama.attention.head_count_kv")).toBe(2);
    expect(md.get("llama.rope.freq_base")).toBe(10000);
    expect(md.get("llama.attention.layer_norm_rms_epsilon")).toBeCloseTo(1e-5, 10);
    expect(md.get("llama.context_length")).toBe(128);
    expect(md.get("tokenizer.ggml.model")).toBe("gpt2");
    expect(md.get("tokenizer.ggml.pre")).toBe("qwen2");
    const tokens = md.get("tokenizer.ggml.tokens") as string[];
    expect(tokens.length).toBe(664);
    expect(tokens[tok.tokenToId("<|im_end|>")!]).toBe("<|im_end|>");
    expect(tokens[663]).toBe("[PAD663]");
    const types = md.get("tokenizer.ggml.token_type") as number[];
    expect(types[tok.tokenToId("<|im_end|>")!]).toBe(3);
    expect(types[tok.tokenToId("<tool_call>")!]).toBe(4);
    expect(types[663]).toBe(5);
    expect(types[100]).toBe(1);
    expect((md.get("tokenizer.ggml.merges") as string[]).length).toBe(400);
    expect(md.get("tokenizer.ggml.eos_token_id")).toBe(tok.eosId);
    expect(md.get("tokenizer.ggml.add_bos_token")).toBe(false);

    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.size).toBe(tensors.size);
    for (const [hf, t] of tensors) {
      const gt = byName.get(ggufTensorName(hf)!)!;
      expect(gt.shape, hf).toEqual(t.shape);
      expect(gt.ne).toEqual([...t.shape].reverse());
      const nHead = hf.includes("q_proj") ? 4 : hf.includes("k_proj") ? 2 : 0;
      const want = nHead ? permuteForLlamaRope(t.data, t.shape[0], t.shape[1], nHead) : t.data;
      expect(gt.data!).toEqual(want);
    }
    expect(byName.get("blk.1.attn_k.weight")!.shape).toEqual([8, 16]); // 2 kv heads × head_dim 4
    expect(byName.has("output.weight")).toBe(true);
  });

  it("F16: 2-D weights in F16, norms in F32; qwen2 keeps q/k unpermuted with biases, tied output", () => {
    const config = tiny({ model_type: "qwen2", tie_word_embeddings: true, rope_theta: 1e6 });
    const tensors = randomTensors(config, 2);
    const p = join(tmp(), "q.gguf");
    writeGgufModel(p, config, tensors, tok, { dtype: "F16" });
    const g = readGguf(p);
    expect(g.metadata.get("general.architecture")).toBe("qwen2");
    expect(g.metadata.get("qwen2.rope.freq_base")).toBe(1e6);
    expect(g.metadata.get("general.file_type")).toBe(1);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.has("output.weight")).toBe(false);
    expect(byName.get("blk.0.attn_q.weight")!.type).toBe(GgmlType.F16);
    expect(byName.get("blk.0.attn_norm.weight")!.type).toBe(GgmlType.F32);
    expect(byName.get("blk.0.attn_q.bias")!.data).toEqual(
      tensors.get("model.layers.0.self_attn.q_proj.bias")!.data,
    );
    const q = tensors.get("model.layers.0.self_attn.q_proj.weight")!.data;
    const back = byName.get("blk.0.attn_q.weight")!.data!;
    for (let i = 0; i < q.length; i++) expect(Math.abs(back[i] - q[i])).toBeLessThan(1e-3);
  });

  it("writes Llama 3 rope scaling as rope_freqs and marks add_bos for a BOS-adding tokenizer", () => {
    const l3 = loadTokenizer(join(FIX, "bpe-llama3"));
    const config = tiny({
      head_dim: 8,
      rope_theta: 500000,
      rope_scaling: {
        factor: 32,
        high_freq_factor: 4,
        low_freq_factor: 1,
        original_max_position_embeddings: 8192,
        rope_type: "llama3",
      },
    });
    const p = join(tmp(), "l3.gguf");
    writeGgufModel(p, config, randomTensors(config, 3), l3);
    const g = readGguf(p);
    expect(g.metadata.get("tokenizer.ggml.pre")).toBe("llama-bpe");
    expect(g.metadata.get("tokenizer.ggml.add_bos_token")).toBe(true);
    expect(g.metadata.get("tokenizer.ggml.bos_token_id")).toBe(l3.bosId);
    const rf = g.tensors.find((t) => t.name === "rope_freqs.weight")!;
    expect(rf.shape).toEqual([4]);
    // highest frequency unscaled, lowest scaled by the full factor
    expect(rf.data![0]).toBe(1);
    expect(rf.data![3]).toBe(32);
  });

  it("errors name the file and tensor / field", () => {
    const config = tiny();
    const tensors = randomTensors(config, 4);
    tensors.delete("model.layers.1.mlp.up_proj.weight");
    expect(() => writeGgufModel("/tmp/x.gguf", config, tensors, tok)).toThrow(
      /\/tmp\/x.gguf: tensor "model.layers.1.mlp.up_proj.weight": missing/,
    );
    const wl = buildWordLevelTokenizer({ words: ["a"] });
    expect(() =>
      writeGgufModel("/tmp/x.gguf", tiny({ vocab_size: 2 }), randomTensors(tiny({ vocab_size: 2 }), 1), wl),
    ).toThrow(/\/tmp\/x.gguf: tokenizer: only byte-level BPE/);
    expect(() =>
      writeGgufModel(
        "/tmp/x.gguf",
        tiny({ vocab_size: 100 }),
        randomTensors(tiny({ vocab_size: 100 }), 1),
        tok,
      ),
    ).toThrow(/tokenizer has 660 tokens but the model's vocab_size is 100/);
  });
});

describe("writeGgufLora", () => {
  it("maps PEFT names, keeps [r,in]/[out,r] shapes, permutes lora_b of q/k only", () => {
    const config = tiny();
    const r = 2;
    const lora = new Map<string, { shape: number[]; data: Float32Array }>();
    const fill = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => i + k);
    for (const [mod, out] of [
      ["self_attn.q_proj", 16],
      ["self_attn.k_proj", 8],
      ["self_attn.v_proj", 8],
    ] as const) {
      lora.set(`base_model.model.model.layers.1.${mod}.lora_A.weight`, {
        shape: [r, 16],
        data: fill(r * 16, 0),
      });
      lora.set(`base_model.model.model.layers.1.${mod}.lora_B.weight`, {
        shape: [out, r],
        data: fill(out * r, 100),
      });
    }
    const p = join(tmp(), "a.gguf");
    writeGgufLora(p, config, lora, { alpha: 8, rank: r });
    const g = readGguf(p);
    expect(g.metadata.get("general.type")).toBe("adapter");
    expect(g.metadata.get("adapter.type")).toBe("lora");
    expect(g.metadata.get("adapter.lora.alpha")).toBe(8);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.get("blk.1.attn_q.weight.lora_a")!.ne).toEqual([16, r]);
    expect(byName.get("blk.1.attn_q.weight.lora_b")!.ne).toEqual([r, 16]);
    const qb = lora.get("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight")!;
    expect(byName.get("blk.1.attn_q.weight.lora_b")!.data).toEqual(permuteForLlamaRope(qb.data, 16, r, 4));
    const kb = lora.get("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight")!;
    expect(byName.get("blk.1.attn_k.weight.lora_b")!.data).toEqual(permuteForLlamaRope(kb.data, 8, r, 2));
    const vb = lora.get("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")!;
    expect(byName.get("blk.1.attn_v.weight.lora_b")!.data).toEqual(vb.data);

    lora.delete("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
    expect(() => writeGgufLora(p, config, lora, { alpha: 8, rank: r })).toThrow(
      /blk.1.attn_v.weight": has lora_b but not its pair/,
    );
    lora.set("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight", {
      shape: [r, 15],
      data: new Float32Array(r * 15),
    });
    expect(() => writeGgufLora(p, config, lora, { alpha: 8, rank: r })).toThrow(
      /a.gguf: tensor "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight": shape \[2, 15\], expected \[2, 16\]/,
    );
  });
});

it("fixtures stay small", () => {
  for (const f of ["bpe-golden.json", "bpe-qwen2/tokenizer.json", "dtypes.safetensors"]) {
    expect(readFileSync(join(FIX, f)).length).toBeLessThan(100_000);
  }
});

describe("directory conversion", () => {
  it("converts an HF model dir (bf16 safetensors) and a PEFT rsLoRA dir", () => {
    const tok = loadTokenizer(join(FIX, "bpe-qwen2"));
    const config = tiny({ model_type: "qwen2", tie_word_embeddings: true });
    const tensors = randomTensors(config, 5);
    const dir = tmp();
    writeHfConfig(join(dir, "config.json"), config);
    writeSafetensors(join(dir, "model.safetensors"), tensors, { dtype: "BF16" });
    tok.save(dir);
    convertHfDirToGguf(dir, join(dir, "m.gguf"));
    const g = readGguf(join(dir, "m.gguf"));
    expect(g.metadata.get("general.architecture")).toBe("qwen2");
    const emb = g.tensors.find((t) => t.name === "token_embd.weight")!;
    const bf16 = f32ToBf16Array(tensors.get("model.embed_tokens.weight")!.data);
    expect(emb.data).toEqual(new Float32Array(Uint32Array.from(bf16, (b) => b << 16).buffer));

    const adapter = join(dir, "adapter");
    mkdirSync(adapter);
    writeFileSync(
      join(adapter, "adapter_config.json"),
      JSON.stringify({ r: 4, lora_alpha: 8, use_rslora: true }),
    );
    const lora = new Map([
      [
        "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight",
        { shape: [4, 16], data: new Float32Array(64) },
      ],
      [
        "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight",
        { shape: [24, 4], data: new Float32Array(96) },
      ],
    ]);
    writeSafetensors(join(adapter, "adapter_model.safetensors"), lora);
    convertPeftDirToGguf(adapter, config, join(dir, "a.gguf"));
    const a = readGguf(join(dir, "a.gguf"));
    // llama.cpp scales by alpha/r; rsLoRA's alpha/√r needs alpha·√r = 16.
    expect(a.metadata.get("adapter.lora.alpha")).toBe(16);
    expect(a.tensors.map((t) => t.name).sort()).toEqual([
      "blk.0.ffn_up.weight.lora_a",
      "blk.0.ffn_up.weight.lora_b",
    ]);
    writeFileSync(join(adapter, "adapter_config.json"), JSON.stringify({ r: 4 }));
    expect(() => convertPeftDirToGguf(adapter, config, join(dir, "a.gguf"))).toThrow(
      /adapter_config.json: field "lora_alpha"/,
    );
  });
});
