import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  expectedTensorShapes,
  parseHfConfig,
  readHfConfig,
  validateTensors,
  writeHfConfig,
} from "../../../src/engine/io/hf-config.ts";

// The real Qwen2.5-0.5B-Instruct config.json (as published).
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

// Llama-3.2-1B-style config (eos list, rope_scaling, attention_bias false, head_dim given).
const LLAMA32 = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, rope_type: "llama3" },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  vocab_size: 128256,
};

describe("HF config.json", () => {
  it("parses Qwen2.5-0.5B: GQA, qkv bias, tied embeddings", () => {
    const c = parseHfConfig(QWEN25_05B);
    expect(c).toMatchObject({
      modelType: "qwen2",
      hiddenSize: 896,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      qkvBias: true,
      oBias: false,
      tieWordEmbeddings: true,
      ropeTheta: 1e6,
      eosTokenId: 151645,
      bosTokenId: 151643,
      torchDtype: "bfloat16",
    });
    const shapes = expectedTensorShapes(c);
    expect(shapes.get("model.layers.23.self_attn.k_proj.weight")).toEqual([128, 896]);
    expect(shapes.get("model.layers.0.self_attn.q_proj.bias")).toEqual([896]);
    expect(shapes.has("model.layers.0.self_attn.o_proj.bias")).toBe(false);
    expect(shapes.has("lm_head.weight")).toBe(false);
    // 24 layers × 12 tensors + embed + norm
    expect(shapes.size).toBe(24 * 12 + 2);
    let params = 0;
    for (const s of shapes.values()) params += s.reduce((a, b) => a * b, 1);
    expect(params).toBe(494_032_768); // the published parameter count
  });

  it("parses Llama 3.2 with eos list and rope_scaling; llama attention_bias covers o_proj too", () => {
    const c = parseHfConfig(LLAMA32);
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(c.eosTokenId).toBe(128001);
    expect(c.ropeScaling).toMatchObject({ rope_type: "llama3" });
    expect(c.qkvBias).toBe(false);
    const biased = parseHfConfig({ ...LLAMA32, attention_bias: true });
    expect(biased.qkvBias && biased.oBias).toBe(true);
    expect(expectedTensorShapes(biased).get("model.layers.0.self_attn.o_proj.bias")).toEqual([2048]);
    const mistral = parseHfConfig({ ...LLAMA32, model_type: "mistral", num_key_value_heads: undefined });
    expect(mistral.numKvHeads).toBe(32);
  });

  it("reads transformers v5 configs (dtype, rope_parameters)", () => {
    const { rope_theta: _t, torch_dtype: _d, ...rest } = QWEN25_05B;
    const v5 = {
      ...rest,
      dtype: "bfloat16",
      rope_parameters: { rope_theta: 1000000.0, rope_type: "default" },
    };
    expect(parseHfConfig(v5)).toEqual(parseHfConfig(QWEN25_05B));
    const { rope_theta: _lt, rope_scaling, ...l3rest } = LLAMA32;
    const l3v5 = { ...l3rest, rope_parameters: { ...rope_scaling, rope_theta: 500000.0 } };
    const c = parseHfConfig(l3v5);
    expect(c.ropeTheta).toBe(500000);
    expect(c.ropeScaling).toMatchObject({ rope_type: "llama3", factor: 32 });
  });

  it("writes config.json that reads back to the same ModelConfig", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-cfg-"));
    for (const raw of [QWEN25_05B, LLAMA32]) {
      const c = parseHfConfig(raw);
      writeHfConfig(join(dir, "config.json"), c);
      expect(readHfConfig(join(dir, "config.json"))).toEqual(c);
    }
  });

  it("errors name the file and the field", () => {
    expect(() => parseHfConfig({ ...QWEN25_05B, model_type: "gpt2" }, "m/config.json")).toThrow(
      /m\/config.json: field "model_type": unsupported model_type "gpt2"/,
    );
    expect(() => parseHfConfig({ ...QWEN25_05B, hidden_size: "896" }, "m/config.json")).toThrow(
      /m\/config.json: field "hidden_size"/,
    );
    expect(() => parseHfConfig({ ...QWEN25_05B, num_key_value_heads: 3 }, "m/config.json")).toThrow(
      /field "num_key_value_heads": 3 does not divide/,
    );
    const dir = mkdtempSync(join(tmpdir(), "emlab-cfg-"));
    writeFileSync(join(dir, "config.json"), "{");
    expect(() => readHfConfig(join(dir, "config.json"))).toThrow(
      /config.json: field "\(root\)": not valid JSON/,
    );
  });

  it("validateTensors names the file and tensor", () => {
    const c = parseHfConfig({
      ...QWEN25_05B,
      num_hidden_layers: 1,
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 4,
      num_attention_heads: 2,
      num_key_value_heads: 1,
    });
    const tensors = new Map([...expectedTensorShapes(c)].map(([k, shape]) => [k, { shape }]));
    expect(() => validateTensors(c, tensors, "m.safetensors")).not.toThrow();
    tensors.set("lm_head.weight", { shape: [10, 8] }); // tied duplicate: tolerated
    expect(() => validateTensors(c, tensors, "m.safetensors")).not.toThrow();
    tensors.set("model.layers.0.mlp.up_proj.weight", { shape: [8, 4] });
    expect(() => validateTensors(c, tensors, "m.safetensors")).toThrow(
      /m.safetensors: tensor "model.layers.0.mlp.up_proj.weight": shape \[8, 4\], expected \[4, 8\]/,
    );
    tensors.delete("model.layers.0.mlp.up_proj.weight");
    expect(() => validateTensors(c, tensors, "m.safetensors")).toThrow(
      /m.safetensors: tensor "model.layers.0.mlp.up_proj.weight": missing/,
    );
    tensors.set("model.layers.0.mlp.up_proj.weight", { shape: [4, 8] });
    tensors.set("model.layers.7.extra.weight", { shape: [1] });
    expect(() => validateTensors(c, tensors, "m.safetensors")).toThrow(
      /"model.layers.7.extra.weight": unexpected/,
    );
  });
});
