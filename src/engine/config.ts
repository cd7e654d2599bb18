import { type ModelConfig, parseHfConfig, toHfConfigJson } from "./io/hf-config.ts";
import type { RopeScaling } from "./ops/rope.ts";

/**
 * The engine's view of a Llama-family architecture (llama, qwen2 and mistral share the
 * forward; they differ in biases, tying and defaults). Parsing and validation of
 * config.json is io/hf-config.ts's; this is the flat shape the model reads.
 */
export interface LlamaShape {
  modelType: "llama" | "qwen2" | "mistral";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (always on for qwen2; `attention_bias` for llama). */
  qkvBias: boolean;
  /** Bias on o_proj (llama's attention_bias applies to o_proj too). */
  oBias: boolean;
  maxPositions: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export function shapeFromModelConfig(c: ModelConfig): LlamaShape {
  return {
    modelType: c.modelType,
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    layers: c.numLayers,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    rmsNormEps: c.rmsNormEps,
    ropeTheta: c.ropeTheta,
    ropeScaling: (c.ropeScaling as RopeScaling | undefined) ?? null,
    tieWordEmbeddings: c.tieWordEmbeddings,
    qkvBias: c.qkvBias,
    oBias: c.oBias,
    maxPositions: c.maxPositionEmbeddings,
    bosTokenId: c.bosTokenId ?? null,
    eosTokenIds: c.eosTokenIds,
  };
}

export function modelConfigFromShape(s: LlamaShape): ModelConfig {
  return {
    modelType: s.modelType,
    hiddenSize: s.hiddenSize,
    intermediateSize: s.intermediateSize,
    numLayers: s.layers,
    numHeads: s.heads,
    numKvHeads: s.kvHeads,
    headDim: s.headDim,
    vocabSize: s.vocabSize,
    rmsNormEps: s.rmsNormEps,
    ropeTheta: s.ropeTheta,
    maxPositionEmbeddings: s.maxPositions,
    tieWordEmbeddings: s.tieWordEmbeddings,
    qkvBias: s.qkvBias,
    oBias: s.oBias,
    bosTokenId: s.bosTokenId ?? undefined,
    eosTokenId: s.eosTokenIds[0],
    eosTokenIds: s.eosTokenIds,
    torchDtype: "float32",
    ropeScaling: (s.ropeScaling as Record<string, unknown> | null) ?? undefined,
  };
}

/** Validates an HF config.json object (io's zod schema) and flattens it. */
export function shapeFromHfConfig(raw: unknown, file = "config.json"): LlamaShape {
  return shapeFromModelConfig(parseHfConfig(raw, file));
}

/** The HF config.json for a shape (what `saveModel` writes). */
export function hfConfigFromShape(s: LlamaShape): Record<string, unknown> {
  return toHfConfigJson(modelConfigFromShape(s));
}

/** Builds a shape from a few numbers (for new models: the organism, tests, benches). */
export function makeShape(
  p: Partial<LlamaShape> & Pick<LlamaShape, "vocabSize" | "hiddenSize" | "layers" | "heads">,
): LlamaShape {
  const headDim = p.headDim ?? p.hiddenSize / p.heads;
  return {
    modelType: "llama",
    intermediateSize: p.intermediateSize ?? Math.round((8 * p.hiddenSize) / 3 / 8) * 8,
    kvHeads: p.heads,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    maxPositions: 2048,
    bosTokenId: null,
    eosTokenIds: [],
    ...p,
    headDim,
  };
}
