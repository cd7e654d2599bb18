// HF `config.json` for the Llama family (llama / qwen2 / mistral) as a typed ModelConfig,
// the HF tensor names and shapes such a config implies, and validation of a tensor map.

import { readFileSync, writeFileSync } from "node:fs";
import { z } from "zod";

export const SUPPORTED_MODEL_TYPES = ["llama", "qwen2", "mistral"] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface ModelConfig {
  modelType: ModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2 always; llama when `attention_bias`). */
  qkvBias: boolean;
  /** o_proj carries a bias (llama `attention_bias` only; qwen2 has none). */
  oBias: boolean;
  bosTokenId?: number;
  /** First eos id; `eosTokenIds` holds all when config lists several. */
  eosTokenId?: number;
  eosTokenIds: number[];
  torchDtype?: string;
  /** Llama 3.x `rope_scaling` as given (the model decides whether it supports it). */
  ropeScaling?: Record<string, unknown>;
}

export class ConfigError extends Error {
  constructor(file: string, field: string, message: string) {
    super(`${file}: field "${field}": ${message}`);
    this.name = "ConfigError";
  }
}

const posInt = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullish();

const rawConfigSchema = z.object({
  model_type: z.string(),
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  vocab_size: posInt,
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().optional(),
  max_position_embeddings: posInt.default(2048),
  tie_word_embeddings: z.boolean().default(false),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  hidden_act: z.string().default("silu"),
  bos_token_id: tokenIds,
  eos_token_id: tokenIds,
  torch_dtype: z.string().nullish(),
  /** transformers v5 writes `dtype` instead of `torch_dtype`. */
  dtype: z.string().nullish(),
  rope_scaling: z.record(z.string(), z.unknown()).nullish(),
  /** transformers v5 keeps rope_theta (and any scaling) here. */
  rope_parameters: z.record(z.string(), z.unknown()).nullish(),
});

const warned = new Set<string>();

/** One `emlab:` warning on stderr per distinct message (a directory is loaded many times). */
export function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.stderr.write(`emlab: ${message}\n`);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * RoPE as transformers 5 reads it (`convert_rope_params_to_dict`): the parameters are the
 * legacy `rope_scaling` when given, else `rope_parameters`; `rope_theta` is theirs when they
 * carry one, else the top-level `rope_theta`, else 10000. A `rope_type` (or legacy `type`)
 * other than "default" is a scaling spec. Where the two places disagree, a warning says which won.
 */
function resolveRope(
  c: {
    rope_theta?: number;
    rope_scaling?: Record<string, unknown> | null;
    rope_parameters?: Record<string, unknown> | null;
  },
  file: string,
): { ropeTheta: number; ropeScaling?: Record<string, unknown> } {
  const legacy = c.rope_scaling && Object.keys(c.rope_scaling).length > 0 ? c.rope_scaling : undefined;
  const v5 = c.rope_parameters ?? undefined;
  const params = legacy ?? v5;
  const where = legacy ? "rope_scaling" : "rope_parameters";
  if (legacy && v5 && !sameJson(legacy, v5)) {
    warnOnce(
      `${file}: both rope_scaling and rope_parameters are set and differ; following transformers 5, rope_scaling is used and rope_parameters ignored`,
    );
  }
  let ropeTheta = c.rope_theta ?? 10000;
  if (params && params.rope_theta !== undefined) {
    if (typeof params.rope_theta !== "number" || !(params.rope_theta > 0)) {
      throw new ConfigError(file, `${where}.rope_theta`, "must be a positive number");
    }
    if (c.rope_theta !== undefined && c.rope_theta !== params.rope_theta) {
      warnOnce(
        `${file}: rope_theta ${c.rope_theta} and ${where}.rope_theta ${params.rope_theta} differ; following transformers 5, ${where}.rope_theta is used`,
      );
    }
    ropeTheta = params.rope_theta;
  }
  const type = params?.rope_type ?? params?.type ?? "default";
  return { ropeTheta, ropeScaling: params && type !== "default" ? params : undefined };
}

export function parseHfConfig(raw: unknown, file = "config.json"): ModelConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError(file, "(root)", "must be a JSON object");
  const modelType = (raw as { model_type?: unknown }).model_type;
  if (typeof modelType !== "string") throw new ConfigError(file, "model_type", "missing");
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new ConfigError(
      file,
      "model_type",
      `unsupported model_type "${modelType}" (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`,
    );
  }
  const parsed = rawConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(file, issue.path.join(".") || "(root)", issue.message);
  }
  const c = parsed.data;
  const { ropeTheta, ropeScaling } = resolveRope(c, file);
  if (c.hidden_act !== "silu")
    throw new ConfigError(file, "hidden_act", `"${c.hidden_act}" unsupported (only silu)`);
  if (c.mlp_bias) throw new ConfigError(file, "mlp_bias", "MLP biases are not supported");
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new ConfigError(
      file,
      "num_key_value_heads",
      `${numKvHeads} does not divide num_attention_heads ${c.num_attention_heads}`,
    );
  }
  let headDim = c.head_dim ?? undefined;
  if (headDim === undefined) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      throw new ConfigError(
        file,
        "head_dim",
        "absent, and hidden_size is not divisible by num_attention_heads",
      );
    }
    headDim = c.hidden_size / c.num_attention_heads;
  }
  if (headDim % 2 !== 0)
    throw new ConfigError(file, "head_dim", `${headDim} must be even for rotary embeddings`);
  const qwen = modelType === "qwen2";
  const llamaBias = modelType === "llama" && c.attention_bias === true;
  const eos = c.eos_token_id == null ? [] : Array.isArray(c.eos_token_id) ? c.eos_token_id : [c.eos_token_id];
  const bos = Array.isArray(c.bos_token_id) ? c.bos_token_id[0] : (c.bos_token_id ?? undefined);
  return {
    modelType: modelType as ModelType,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    vocabSize: c.vocab_size,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta,
    maxPositionEmbeddings: c.max_position_embeddings,
    tieWordEmbeddings: c.tie_word_embeddings,
    qkvBias: qwen || llamaBias,
    oBias: llamaBias,
    bosTokenId: bos,
    eosTokenId: eos[0],
    eosTokenIds: eos,
    torchDtype: c.torch_dtype ?? c.dtype ?? undefined,
    ropeScaling: ropeScaling ?? undefined,
  };
}

export function readHfConfig(path: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(path, "(root)", `not valid JSON (${(e as Error).message})`);
  }
  return parseHfConfig(raw, path);
}

const ARCHITECTURES: Record<ModelType, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  mistral: "MistralForCausalLM",
};

/** The HF config.json object for a ModelConfig (what transformers would read back identically). */
export function toHfConfigJson(config: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [ARCHITECTURES[config.modelType]],
    model_type: config.modelType,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    hidden_act: "silu",
    torch_dtype: config.torchDtype ?? "float32",
  };
  if (config.modelType === "llama") {
    out.attention_bias = config.qkvBias;
    out.mlp_bias = false;
  } else if (config.qkvBias !== (config.modelType === "qwen2") || config.oBias) {
    throw new ConfigError(
      "config.json",
      "attention_bias",
      `${config.modelType} cannot express this bias layout`,
    );
  }
  if (config.bosTokenId !== undefined) out.bos_token_id = config.bosTokenId;
  if (config.eosTokenIds.length > 0) {
    out.eos_token_id = config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds;
  }
  if (config.ropeScaling) out.rope_scaling = config.ropeScaling;
  return out;
}

export function writeHfConfig(path: string, config: ModelConfig): void {
  writeFileSync(path, `${JSON.stringify(toHfConfigJson(config), null, 2)}\n`);
}

/** HF tensor name -> shape ([out, in] for Linear weights) for every tensor the model must have. */
export function expectedTensorShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim: d, vocabSize: v } = config;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [v, h]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [h]);
    m.set(`${p}.self_attn.q_proj.weight`, [numHeads * d, h]);
    m.set(`${p}.self_attn.k_proj.weight`, [numKvHeads * d, h]);
    m.set(`${p}.self_attn.v_proj.weight`, [numKvHeads * d, h]);
    m.set(`${p}.self_attn.o_proj.weight`, [h, numHeads * d]);
    if (config.qkvBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [numHeads * d]);
      m.set(`${p}.self_attn.k_proj.bias`, [numKvHeads * d]);
      m.set(`${p}.self_attn.v_proj.bias`, [numKvHeads * d]);
    }
    if (config.oBias) m.set(`${p}.self_attn.o_proj.bias`, [h]);
    m.set(`${p}.post_attention_layernorm.weight`, [h]);
    m.set(`${p}.mlp.gate_proj.weight`, [f, h]);
    m.set(`${p}.mlp.up_proj.weight`, [f, h]);
    m.set(`${p}.mlp.down_proj.weight`, [h, f]);
  }
  m.set("model.norm.weight", [h]);
  if (!config.tieWordEmbeddings) m.set("lm_head.weight", [v, h]);
  return m;
}

export class TensorValidationError extends Error {
  constructor(file: string, tensor: string, message: string) {
    super(`${file}: tensor "${tensor}": ${message}`);
    this.name = "TensorValidationError";
  }
}

/**
 * Checks a tensor map against the config: every expected tensor present with the right shape.
 * Unexpected extra tensors are an error too, except rotary caches and a tied lm_head that
 * duplicates the embedding (some checkpoints store it anyway).
 */
export function validateTensors(
  config: ModelConfig,
  tensors: Map<string, { shape: number[] }>,
  file = "model.safetensors",
): void {
  const expected = expectedTensorShapes(config);
  for (const [name, shape] of expected) {
    // Tied, with only the head stored: the loaders tie the embedding to it (resolveTiedLmHead).
    const tiedToHead = name === "model.embed_tokens.weight" && config.tieWordEmbeddings && !tensors.has(name);
    const t = tensors.get(tiedToHead ? "lm_head.weight" : name);
    if (!t) throw new TensorValidationError(file, name, `missing (expected shape [${shape.join(", ")}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new TensorValidationError(
        file,
        name,
        `shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
  }
  for (const name of tensors.keys()) {
    if (expected.has(name)) continue;
    if (name.endsWith("rotary_emb.inv_freq")) continue;
    if (name === "lm_head.weight" && config.tieWordEmbeddings) continue;
    throw new TensorValidationError(file, name, "unexpected tensor for this config");
  }
}

/**
 * `tie_word_embeddings: true` with a stored `lm_head.weight`, as transformers 5 resolves it
 * (`PreTrainedModel.tie_weights` during `from_pretrained`): when the stored head differs from
 * `model.embed_tokens.weight` (`torch.equal`: exact values) the weights are NOT tied and the
 * stored head is used (warned once); when it equals the embedding it is the tied head stored
 * anyway and is dropped; when only the head is stored, the embedding is tied to it. Returns
 * the config the tensors describe (untied in the first case); `tensors` is updated in place.
 */
export function resolveTiedLmHead<T extends { shape: number[]; data: Float32Array }>(
  config: ModelConfig,
  tensors: Map<string, T>,
  file = "model.safetensors",
): ModelConfig {
  const head = tensors.get("lm_head.weight");
  const embed = tensors.get("model.embed_tokens.weight");
  if (!config.tieWordEmbeddings || !head) return config;
  if (!embed) {
    tensors.set("model.embed_tokens.weight", head);
    tensors.delete("lm_head.weight");
    return config;
  }
  const same =
    head.shape.length === embed.shape.length &&
    head.shape.every((d, i) => d === embed.shape[i]) &&
    head.data.every((x, i) => x === embed.data[i]);
  if (same) {
    tensors.delete("lm_head.weight");
    return config;
  }
  warnOnce(
    `${file}: config.json says tie_word_embeddings: true, but lm_head.weight is stored and differs from model.embed_tokens.weight; following transformers 5 the weights are NOT tied and the stored lm_head.weight is used (set tie_word_embeddings: false to silence this)`,
  );
  return { ...config, tieWordEmbeddings: false };
}
