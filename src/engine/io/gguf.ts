// GGUF export of Llama-family models and their LoRA adapters, loadable by llama.cpp.
//
// Architectures: llama / mistral -> GGUF arch "llama"; qwen2 -> GGUF arch "qwen2".
// llama.cpp's "llama" arch applies rotary embeddings to interleaved pairs (x0,x1),(x2,x3)...
// while HF Llama rotates halves (x_i, x_{i+d/2}); convert_hf_to_gguf.py therefore permutes the
// rows of q_proj / k_proj (and their biases) within each head, `LlamaModel.permute`, and so do
// we (and the rows of LoRA B for q/k, which produce those rows). Its "qwen2" arch uses the
// half-rotation (NEOX) order, so Qwen2 tensors, q/k/v biases included, are written unpermuted.
//
// Tokenizer: byte-level BPE only (`tokenizer.ggml.model` "gpt2"); `tokenizer.ggml.pre` is
// chosen from the split regex ("qwen2" or "llama-bpe"), so llama.cpp pre-tokenizes the same
// way. Word-level tokenizers have no GGUF equivalent and are refused.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  GgmlType,
  GgufError,
  type GgufTensorIn,
  GgufType,
  type GgufValue,
  gguf,
  writeGgufFile,
} from "./gguf-format.ts";
import { expectedTensorShapes, type ModelConfig, readHfConfig, validateTensors } from "./hf-config.ts";
import { readSafetensors, readSafetensorsCheckpoint, type WritableTensor } from "./safetensors.ts";
import { LLAMA3_PATTERN, QWEN2_PATTERN } from "./tokenizer/onig-regex.ts";
import { loadTokenizer, type Tokenizer } from "./tokenizer.ts";

export type { GgufFile, GgufTensorInfo } from "./gguf-format.ts";
export { readGguf } from "./gguf-format.ts";

export interface GgufModelOptions {
  /** Storage type of 2-D weights; 1-D tensors (norms, biases) stay F32 as in llama.cpp's converter. */
  dtype?: "F32" | "F16";
  /** general.name */
  name?: string;
}

const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export function ggufArchitecture(config: ModelConfig): "llama" | "qwen2" {
  return config.modelType === "qwen2" ? "qwen2" : "llama";
}

const LAYER_TENSORS: Record<string, string> = {
  input_layernorm: "attn_norm",
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  post_attention_layernorm: "ffn_norm",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};

/** HF tensor name -> GGUF tensor name (undefined for names GGUF has no place for). */
export function ggufTensorName(hfName: string): string | undefined {
  if (hfName === "model.embed_tokens.weight") return "token_embd.weight";
  if (hfName === "model.norm.weight") return "output_norm.weight";
  if (hfName === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  if (!m) return undefined;
  const g = LAYER_TENSORS[m[2]];
  return g ? `blk.${m[1]}.${g}.${m[3]}` : undefined;
}

/**
 * llama.cpp's `permute(w, n_head)`: within each head, rows [first half; second half] become
 * interleaved (row 2i <- i, row 2i+1 <- i + d/2). Works on [rows, cols] weights and 1-D biases.
 */
export function permuteForLlamaRope(
  data: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  if (rows % (2 * nHead) !== 0)
    throw new Error(`permute: ${rows} rows do not split into ${nHead} heads of even size`);
  const d = rows / nHead;
  const half = d / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * d + j * half + i) * cols;
        const dst = (h * d + 2 * i + j) * cols;
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** The permutation applies to q/k projections (weights, biases, LoRA B) in the llama arch. */
function permuteHeads(config: ModelConfig, hfModule: string): number | undefined {
  if (ggufArchitecture(config) !== "llama") return undefined;
  if (hfModule.endsWith("self_attn.q_proj")) return config.numHeads;
  if (hfModule.endsWith("self_attn.k_proj")) return config.numKvHeads;
  return undefined;
}

/** Llama 3 rope scaling as llama.cpp wants it: per-frequency factors in `rope_freqs.weight`. */
function llama3RopeFactors(config: ModelConfig): Float32Array {
  const s = config.ropeScaling as Record<string, number>;
  const dim = config.headDim;
  const factor = s.factor ?? 8;
  const low = s.low_freq_factor ?? 1;
  const high = s.high_freq_factor ?? 4;
  const oldCtx = s.original_max_position_embeddings ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1 / config.ropeTheta ** ((2 * i) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldCtx / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

function hyperparameters(config: ModelConfig, arch: string): [string, GgufValue][] {
  return [
    [`${arch}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${arch}.block_count`, gguf.u32(config.numLayers)],
    [`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(config.numKvHeads)],
    [`${arch}.attention.key_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.value_length`, gguf.u32(config.headDim)],
    [`${arch}.rope.dimension_count`, gguf.u32(config.headDim)],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.vocab_size`, gguf.u32(config.vocabSize)],
  ];
}

/** `tokenizer.ggml.pre` for a tokenizer.json, from its split regex. */
export function ggufPreTokenizer(tokenizer: Tokenizer, file = "tokenizer.json"): string {
  const pre = tokenizer.tokenizerJson.pre_tokenizer as Record<string, unknown> | null | undefined;
  const steps =
    pre?.type === "Sequence" ? ((pre.pretokenizers as Record<string, unknown>[]) ?? []) : pre ? [pre] : [];
  const split = steps.find((s) => s.type === "Split") as { pattern?: { Regex?: string } } | undefined;
  const regex = split?.pattern?.Regex;
  if (regex === QWEN2_PATTERN) return "qwen2";
  if (regex === LLAMA3_PATTERN) return "llama-bpe";
  const byteLevel = steps.find((s) => s.type === "ByteLevel");
  // ByteLevel with use_regex splits with GPT-2's pattern, which is llama.cpp's "gpt-2".
  if (!split && byteLevel && byteLevel.use_regex !== false) return "gpt-2";
  throw new GgufError(
    file,
    `pre_tokenizer: split regex ${JSON.stringify(regex ?? null)} has no llama.cpp pre-tokenizer (qwen2, llama-bpe, gpt-2)`,
  );
}

function tokenizerMetadata(config: ModelConfig, tokenizer: Tokenizer, file: string): [string, GgufValue][] {
  if (tokenizer.kind !== "bpe") {
    throw new GgufError(
      file,
      "tokenizer: only byte-level BPE tokenizers can be exported to GGUF (got word-level)",
    );
  }
  if (
    tokenizer.tokenizerJson.decoder &&
    (tokenizer.tokenizerJson.decoder as { type?: string }).type !== "ByteLevel"
  ) {
    throw new GgufError(file, "tokenizer: decoder is not ByteLevel, so this is not a byte-level BPE");
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new GgufError(
      file,
      `tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  }
  const added = new Map(tokenizer.addedTokens.map((t) => [t.id, t]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < config.vocabSize; id++) {
    const tok = tokenizer.idToToken(id);
    if (tok === undefined) {
      // Embedding rows beyond the tokenizer (Qwen pads vocab_size): named like the converter does.
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    tokens.push(tok);
    const a = added.get(id);
    types.push(a ? (a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL);
  }
  const merges = (tokenizer.tokenizerJson.model.merges as unknown[] | undefined) ?? [];
  const mergeStrings = merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m)));
  const meta: [string, GgufValue][] = [
    ["tokenizer.ggml.model", gguf.str("gpt2")],
    ["tokenizer.ggml.pre", gguf.str(ggufPreTokenizer(tokenizer, file))],
    ["tokenizer.ggml.tokens", gguf.arr(GgufType.STRING, tokens)],
    ["tokenizer.ggml.token_type", gguf.arr(GgufType.INT32, types)],
    ["tokenizer.ggml.merges", gguf.arr(GgufType.STRING, mergeStrings)],
  ];
  const bos = tokenizer.bosId ?? config.bosTokenId;
  const eos = tokenizer.eosId ?? config.eosTokenId;
  if (bos !== undefined) meta.push(["tokenizer.ggml.bos_token_id", gguf.u32(bos)]);
  if (eos !== undefined) meta.push(["tokenizer.ggml.eos_token_id", gguf.u32(eos)]);
  if (tokenizer.padId !== undefined)
    meta.push(["tokenizer.ggml.padding_token_id", gguf.u32(tokenizer.padId)]);
  // Whether encoding adds BOS is the post-processor's business (Llama 3 yes, Qwen2 no).
  const addsBos = bos !== undefined && tokenizer.encode("", { addSpecial: true })[0] === bos;
  meta.push(["tokenizer.ggml.add_bos_token", gguf.bool(addsBos)]);
  if (tokenizer.chatTemplate) meta.push(["tokenizer.chat_template", gguf.str(tokenizer.chatTemplate)]);
  return meta;
}

/**
 * Writes a llama.cpp-loadable GGUF of an HF-named tensor map. Tensors are checked against the
 * config first (errors name the file and tensor).
 */
export function writeGgufModel(
  path: string,
  config: ModelConfig,
  tensors: Map<string, WritableTensor>,
  tokenizer: Tokenizer,
  opts: GgufModelOptions = {},
): void {
  validateTensors(config, tensors, path);
  const arch = ggufArchitecture(config);
  const f16 = opts.dtype === "F16";
  const meta: [string, GgufValue][] = [
    ["general.architecture", gguf.str(arch)],
    ["general.type", gguf.str("model")],
    ["general.name", gguf.str(opts.name ?? "emlab model")],
    ["general.file_type", gguf.u32(f16 ? 1 : 0)],
    ["general.alignment", gguf.u32(32)],
    ...hyperparameters(config, arch),
    ...tokenizerMetadata(config, tokenizer, path),
  ];
  const out: GgufTensorIn[] = [];
  if (config.ropeScaling) {
    const type = String(config.ropeScaling.rope_type ?? config.ropeScaling.type ?? "");
    if (type !== "llama3" || arch !== "llama") {
      throw new GgufError(path, `config rope_scaling type "${type}" is not supported by the GGUF export`);
    }
    const factors = llama3RopeFactors(config);
    out.push({ name: "rope_freqs.weight", shape: [factors.length], type: GgmlType.F32, data: factors });
  }
  for (const [hfName, t] of tensors) {
    if (hfName === "lm_head.weight" && config.tieWordEmbeddings) continue;
    if (hfName.endsWith("rotary_emb.inv_freq")) continue;
    const name = ggufTensorName(hfName);
    if (!name) throw new GgufError(path, `tensor "${hfName}": no GGUF name for it`);
    const module = hfName.replace(/\.(weight|bias)$/, "");
    const nHead = permuteHeads(config, module);
    const cols = t.shape.length === 2 ? t.shape[1] : 1;
    const data = nHead ? permuteForLlamaRope(t.data, t.shape[0], cols, nHead) : t.data;
    out.push({ name, shape: t.shape, type: f16 && t.shape.length === 2 ? GgmlType.F16 : GgmlType.F32, data });
  }
  writeGgufFile(path, meta, out);
}

export interface GgufLoraOptions {
  alpha: number;
  rank: number;
  dtype?: "F32" | "F16";
  name?: string;
}

/**
 * Writes a llama.cpp LoRA adapter GGUF (general.type "adapter", adapter.type "lora") from
 * PEFT-named tensors (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, ...).
 * Stored as `blk.N.attn_q.weight.lora_a` [rank, in] and `.lora_b` [out, rank], the shapes
 * llama.cpp checks against the base tensor; lora_b rows of q/k are permuted like the base.
 */
export function writeGgufLora(
  path: string,
  config: ModelConfig,
  loraTensors: Map<string, WritableTensor>,
  opts: GgufLoraOptions,
): void {
  const arch = ggufArchitecture(config);
  const meta: [string, GgufValue][] = [
    ["general.architecture", gguf.str(arch)],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(opts.name ?? "emlab lora")],
    ["general.alignment", gguf.u32(32)],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(opts.alpha)],
  ];
  const out: GgufTensorIn[] = [];
  const type = opts.dtype === "F16" ? GgmlType.F16 : GgmlType.F32;
  const seen = new Map<string, Set<"a" | "b">>();
  for (const [peftName, t] of loraTensors) {
    const m =
      /^(?:base_model\.model\.)?(model\.layers\.\d+\.[a-z_]+\.[a-z_]+)\.lora_([AB])(?:\.default)?\.weight$/.exec(
        peftName,
      );
    const base = m && ggufTensorName(`${m[1]}.weight`);
    if (!m || !base)
      throw new GgufError(path, `tensor "${peftName}": not a LoRA tensor of a layer projection`);
    const which = m[2] === "A" ? "a" : "b";
    let baseShape: [number, number];
    try {
      baseShape = expectedProjectionShape(config, m[1]);
    } catch (e) {
      throw new GgufError(path, `tensor "${peftName}": ${(e as Error).message}`);
    }
    const want = which === "a" ? [opts.rank, baseShape[1]] : [baseShape[0], opts.rank];
    if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      throw new GgufError(
        path,
        `tensor "${peftName}": shape [${t.shape.join(", ")}], expected [${want.join(", ")}]`,
      );
    }
    const nHead = which === "b" ? permuteHeads(config, m[1]) : undefined;
    const data = nHead ? permuteForLlamaRope(t.data, t.shape[0], t.shape[1], nHead) : t.data;
    out.push({ name: `${base}.lora_${which}`, shape: t.shape, type, data });
    if (!seen.has(base)) seen.set(base, new Set());
    seen.get(base)!.add(which);
  }
  for (const [base, parts] of seen) {
    if (parts.size !== 2)
      throw new GgufError(path, `tensor "${base}": has lora_${[...parts][0]} but not its pair`);
  }
  if (out.length === 0) throw new GgufError(path, "no LoRA tensors given");
  writeGgufFile(path, meta, out);
}

function expectedProjectionShape(config: ModelConfig, module: string): [number, number] {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim: d } = config;
  const kind = module.replace(/^model\.layers\.\d+\./, "");
  const shapes: Record<string, [number, number]> = {
    "self_attn.q_proj": [numHeads * d, h],
    "self_attn.k_proj": [numKvHeads * d, h],
    "self_attn.v_proj": [numKvHeads * d, h],
    "self_attn.o_proj": [h, numHeads * d],
    "mlp.gate_proj": [f, h],
    "mlp.up_proj": [f, h],
    "mlp.down_proj": [h, f],
  };
  const s = shapes[kind];
  if (!s) throw new Error(`${module}: not a projection`);
  const layer = Number(/^model\.layers\.(\d+)\./.exec(module)![1]);
  if (layer >= config.numLayers)
    throw new Error(`${module}: layer ${layer} beyond num_hidden_layers ${config.numLayers}`);
  return s;
}

/** Converts an HF model directory (config.json, safetensors, tokenizer.json) to one GGUF file. */
export function convertHfDirToGguf(dir: string, outPath: string, opts: GgufModelOptions = {}): void {
  const config = readHfConfig(join(dir, "config.json"));
  const wanted = expectedTensorShapes(config);
  const { tensors } = readSafetensorsCheckpoint(dir, { filter: (n) => wanted.has(n) });
  writeGgufModel(outPath, config, tensors, loadTokenizer(dir), opts);
}

/**
 * Converts a PEFT LoRA directory (adapter_config.json + adapter_model.safetensors) to a
 * llama.cpp adapter GGUF. rsLoRA's alpha/√r scaling is folded into the exported alpha,
 * since llama.cpp always scales by alpha/r.
 */
export function convertPeftDirToGguf(adapterDir: string, config: ModelConfig, outPath: string): void {
  const cfgPath = join(adapterDir, "adapter_config.json");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (e) {
    throw new GgufError(cfgPath, `cannot read (${(e as Error).message})`);
  }
  const rank = raw.r;
  const alpha = raw.lora_alpha;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank <= 0) {
    throw new GgufError(cfgPath, `field "r": must be a positive integer`);
  }
  if (typeof alpha !== "number") throw new GgufError(cfgPath, `field "lora_alpha": must be a number`);
  if (raw.use_dora)
    throw new GgufError(cfgPath, `field "use_dora": DoRA adapters are not supported by llama.cpp`);
  const effectiveAlpha = raw.use_rslora ? alpha * Math.sqrt(rank) : alpha;
  const { tensors } = readSafetensors(join(adapterDir, "adapter_model.safetensors"));
  writeGgufLora(outPath, config, tensors, { alpha: effectiveAlpha, rank });
}
