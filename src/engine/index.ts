/**
 * Public surface of the engine: a Llama-family transformer in TypeScript with tape
 * autograd, TransformerLens-style hooks, KV-cache generation, AdamW training, LoRA/PEFT
 * and HF-layout load/save. It knows nothing of studies or providers.
 */
export { backward, clearTape, noGrad } from "./autograd.ts";
export { chatExamples } from "./chat-examples.ts";
export { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
export { hfConfigFromShape, type LlamaShape, makeShape, shapeFromHfConfig } from "./config.ts";
export { type ExportGgufOptions, exportGguf, logitsForIds } from "./export.ts";
export { type GeneratedSample, type GenerateOptions, generate } from "./generate.ts";
export {
  ablateHook,
  BLOCK_HOOKS,
  type HookContext,
  type HookFn,
  type Hooks,
  hookNames,
  mergeHooks,
  steerHook,
} from "./hooks.ts";
export { KvCache } from "./kv-cache.ts";
export { LORA_TARGETS, LoraAdapter, type LoraOptions, type LoraTarget } from "./lora.ts";
export { expectedTensors, type ForwardOptions, LlamaModel, type TokenBatch } from "./model.ts";
export { checkAdapterDir, checkModelDir, type ModelDirCheck } from "./model-dir.ts";
export { crossEntropy } from "./ops/cross-entropy.ts";
export { add, addVector, mul, projectOut, scale } from "./ops/elementwise.ts";
export { linear, matmul } from "./ops/matmul.ts";
export { AdamW, type AdamWOptions, clipGradNorm, lrAt } from "./optim.ts";
export { addLora, loadAdapter, mergeLora, readAdapterConfig, saveAdapter } from "./peft.ts";
export { loadModel, saveModel } from "./pretrained.ts";
export { Rng } from "./rng.ts";
export * from "./sae/index.ts";
export { argmax, logSoftmax, sampleToken, topK } from "./sampling.ts";
export { Tensor } from "./tensor.ts";
export {
  batchLoss,
  makeBatch,
  type StepInfo,
  type TrainConfig,
  type TrainExample,
  Trainer,
} from "./train.ts";
