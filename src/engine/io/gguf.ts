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

import { existsSync, readdirSync, readFileSync } from "node:fs";
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
import {
  expectedTensorShapes,
  type ModelConfig,
  readHfConfig,
  resolveTiedLmHead,
  validateTensors,
  warnOnce,
} from "./hf-config.ts";
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
  /**
   * The model's chat template (`modelChatTemplate(dir)`); default: the tokenizer's
   * `tokenizer_config.json` one. A list of named templates writes "default" as
   * `tokenizer.chat_template` and the others as `tokenizer.chat_template.<name>`.
   */
  chatTemplate?: ChatTemplateSource;
}

export type ChatTemplateSource = string | { name: string; template: string }[];

/**
 * The chat template a model directory carries, as transformers 5 reads it: a
 * `chat_template.jinja` file (plus `additional_chat_templates/*.jinja`, as named templates)
 * takes priority over `tokenizer_config.json`'s `chat_template` (a string, or a list of
 * `{name, template}`); `chat_template.json` (llama.cpp's converter reads it) comes last.
 * llama.cpp's converter prefers tokenizer_config.json over the .jinja file; where both exist
 * and differ a warning says which one is used.
 */
export function modelChatTemplate(dir: string): ChatTemplateSource | undefined {
  const cfgPath = join(dir, "tokenizer_config.json");
  let fromConfig: unknown;
  if (existsSync(cfgPath)) {
    try {
      fromConfig = (JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>).chat_template;
    } catch {
      fromConfig = undefined; // loadTokenizer reports a bad tokenizer_config.json
    }
  }
  const configTemplate = isTemplateSource(fromConfig) ? fromConfig : undefined;
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) {
    const main = readFileSync(jinja, "utf8");
    const extraDir = join(dir, "additional_chat_templates");
    const extra = existsSync(extraDir)
      ? readdirSync(extraDir)
          .filter((f) => f.endsWith(".jinja"))
          .sort()
      : [];
    const fromFile: ChatTemplateSource =
      extra.length === 0
        ? main
        : [
            { name: "default", template: main },
            ...extra.map((f) => ({
              name: f.slice(0, -".jinja".length),
              template: readFileSync(join(extraDir, f), "utf8"),
            })),
          ];
    if (configTemplate !== undefined && JSON.stringify(fromFile) !== JSON.stringify(configTemplate)) {
      warnOnce(
        `${dir}: chat_template.jinja and tokenizer_config.json's chat_template differ; following transformers 5, chat_template.jinja is used (llama.cpp's convert_hf_to_gguf.py would take tokenizer_config.json's)`,
      );
    }
    return fromFile;
  }
  if (configTemplate !== undefined) return configTemplate;
  const json = join(dir, "chat_template.json");
  if (!existsSync(json)) return undefined;
  try {
    const t = (JSON.parse(readFileSync(json, "utf8")) as Record<string, unknown>).chat_template;
    return isTemplateSource(t) ? t : undefined;
  } catch (e) {
    throw new GgufError(json, `not valid JSON (${(e as Error).message})`);
  }
}

function isTemplateSource(v: unknown): v is ChatTemplateSource {
  if (typeof v === "string") return true;
  return (
    Array.isArray(v) &&
    v.every(
      (t) =>
        typeof t === "object" && t !== null && typeof t.name === "string" && typeof t.template === "string",
    )
  );
}

/** `GGUFWriter.add_chat_template`: names keep only [A-Za-z0-9] (others become "_"). */
function chatTemplateMetadata(src: ChatTemplateSource): [string, GgufValue][] {
  if (typeof src === "string") return [["tokenizer.chat_template", gguf.str(src)]];
  const meta: [string, GgufValue][] = [];
  const names: string[] = [];
  let main: string | undefined;
  for (const { name: raw, template } of src) {
    const name = raw.replace(/[^A-Za-z0-9]/g, "_");
    if (!name) continue;
    if (name === "default") main = template;
    else if (!names.includes(name)) {
      names.push(name);
      meta.push([`tokenizer.chat_template.${name}`, gguf.str(template)]);
    }
  }
  if (names.length > 0) meta.push(["tokenizer.chat_templates", gguf.arr(GgufType.STRING, names)]);
  if (main !== undefined) meta.push(["tokenizer.chat_template", gguf.str(main)]);
  return meta;
}

/** `TextModel.does_token_look_special`: added tokens that are control tokens though not marked special. */
function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<\uFF5C") && token.endsWith("\uFF5C>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

/** gguf-py's `model_weight_count_rounded_notation` (general.size_label). */
export function ggufSizeLabel(params: number): string {
  const [scale, suffix] =
    params > 1e12 ? [1e-12, "T"] : params > 1e9 ? [1e-9, "B"] : params > 1e6 ? [1e-6, "M"] : [1e-3, "K"];
  const scaled = params * scale;
  const digits = String(Math.round(scaled)).replace(/^0+/, "").length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

/** gguf-py's GGML_QUANT_VERSION (general.quantization_version). */
const GGML_QUANT_VERSION = 2;

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

/**
 * `TextModel.set_gguf_parameters` (+ `LlamaModel`'s vocab_size and rope.dimension_count, which
 * the converter writes for llama/mistral but not for qwen2). key/value_length: the converter
 * writes them when config.json has head_dim, which emlab's config.json always has.
 */
function hyperparameters(config: ModelConfig, arch: string): [string, GgufValue][] {
  const meta: [string, GgufValue][] = [
    [`${arch}.block_count`, gguf.u32(config.numLayers)],
    [`${arch}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(config.numKvHeads)],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.attention.key_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.value_length`, gguf.u32(config.headDim)],
  ];
  if (arch === "llama") {
    meta.push([`${arch}.vocab_size`, gguf.u32(config.vocabSize)]);
    meta.push([`${arch}.rope.dimension_count`, gguf.u32(config.headDim)]);
  }
  return meta;
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

function tokenizerMetadata(
  config: ModelConfig,
  tokenizer: Tokenizer,
  file: string,
  chatTemplate?: ChatTemplateSource,
): [string, GgufValue][] {
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
    types.push(
      a ? (a.special || looksSpecial(tok) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL,
    );
  }
  const merges = (tokenizer.tokenizerJson.model.merges as unknown[] | undefined) ?? [];
  // Pair-form merges (tokenizers >= 0.20) may hold spaces; gguf-py writes them as U+0120.
  const mergeStrings = merges.map((m) =>
    Array.isArray(m) ? m.map((part: string) => part.replaceAll(" ", "\u0120")).join(" ") : String(m),
  );
  const meta: [string, GgufValue][] = [
    ["tokenizer.ggml.model", gguf.str("gpt2")],
    ["tokenizer.ggml.pre", gguf.str(ggufPreTokenizer(tokenizer, file))],
    ["tokenizer.ggml.tokens", gguf.arr(GgufType.STRING, tokens)],
    ["tokenizer.ggml.token_type", gguf.arr(GgufType.INT32, types)],
    ["tokenizer.ggml.merges", gguf.arr(GgufType.STRING, mergeStrings)],
  ];
  const cfg = tokenizer.tokenizerConfig;
  // gguf-py's SpecialVocab: `<type>_token` of tokenizer_config.json first, then config.json's ids.
  const addedId = (key: string): number | undefined => {
    const v = cfg[key];
    const content = typeof v === "string" ? v : (v as { content?: unknown } | null)?.content;
    return typeof content === "string"
      ? tokenizer.addedTokens.find((t) => t.content === content)?.id
      : undefined;
  };
  const ids: [string, number | undefined][] = [
    ["bos", tokenizer.bosId ?? config.bosTokenId],
    ["eos", tokenizer.eosId ?? config.eosTokenId],
    ["unknown", addedId("unk_token")],
    ["seperator", addedId("sep_token")], // sic: llama.cpp's key
    ["padding", tokenizer.padId],
    ["cls", addedId("cls_token")],
    ["mask", addedId("mask_token")],
  ];
  for (const [name, id] of ids) {
    if (id !== undefined && id < config.vocabSize)
      meta.push([`tokenizer.ggml.${name}_token_id`, gguf.u32(id)]);
  }
  // add_bos/add_eos: tokenizer_config.json's flags when set (as gguf-py), else what encoding does
  // (the post-processor's business: Llama 3 adds BOS, Qwen2 nothing).
  const withSpecials = tokenizer.encode("", { addSpecial: true });
  const bos = tokenizer.bosId ?? config.bosTokenId;
  const eos = tokenizer.eosId ?? config.eosTokenId;
  const addBos =
    typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : bos !== undefined && withSpecials[0] === bos;
  const addEos =
    typeof cfg.add_eos_token === "boolean"
      ? cfg.add_eos_token
      : eos !== undefined && withSpecials.length > 0 && withSpecials[withSpecials.length - 1] === eos;
  meta.push(["tokenizer.ggml.add_bos_token", gguf.bool(addBos)]);
  meta.push(["tokenizer.ggml.add_eos_token", gguf.bool(addEos)]);
  if (ggufArchitecture(config) === "llama" && typeof cfg.add_prefix_space === "boolean")
    meta.push(["tokenizer.ggml.add_space_prefix", gguf.bool(cfg.add_prefix_space)]);
  const template = chatTemplate ?? tokenizer.chatTemplate;
  if (template !== undefined) meta.push(...chatTemplateMetadata(template));
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
  // A tied config with a stored head is read as transformers 5 reads it (resolveTiedLmHead).
  tensors = new Map(tensors);
  config = resolveTiedLmHead(config, tensors, path);
  validateTensors(config, tensors, path);
  const arch = ggufArchitecture(config);
  const f16 = opts.dtype === "F16";
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
  const params = out.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  // The converter's order: general.*, hyperparameters, general.file_type, tokenizer.
  const meta: [string, GgufValue][] = [
    ["general.architecture", gguf.str(arch)],
    ["general.type", gguf.str("model")],
    ["general.name", gguf.str(opts.name ?? "emlab model")],
    ["general.size_label", gguf.str(ggufSizeLabel(params))],
    ["general.quantization_version", gguf.u32(GGML_QUANT_VERSION)],
    ["general.alignment", gguf.u32(32)],
    ...hyperparameters(config, arch),
    ["general.file_type", gguf.u32(f16 ? 1 : 0)],
    ...tokenizerMetadata(config, tokenizer, path, opts.chatTemplate),
  ];
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
  const declared = readHfConfig(join(dir, "config.json"));
  const wanted = expectedTensorShapes(declared);
  const { tensors } = readSafetensorsCheckpoint(dir, {
    filter: (n) => wanted.has(n) || n === "lm_head.weight",
  });
  const config = resolveTiedLmHead(declared, tensors, join(dir, "model.safetensors"));
  writeGgufModel(outPath, config, tensors, loadTokenizer(dir), {
    chatTemplate: modelChatTemplate(dir),
    ...opts,
  });
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
