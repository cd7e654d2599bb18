/**
 * Sparse autoencoders over the engine's hook points (issue 17, "Persona features"): the
 * model (TopK and ReLU + L1), training with hand-written gradients, metrics and the
 * spliced cross-entropy, hooks that splice / steer / clamp latents, SAELens I/O.
 */
export { saeLatentDirections, saeResidPostBlock, unitDecoderDirection } from "./directions.ts";
export { latentClampHook, latentSteerHook, latentsClampHook, spliceHook } from "./hooks.ts";
export { type SaeMetrics, saeMetrics, splicedCrossEntropy } from "./metrics.ts";
export { type SaeArchitecture, type SaeConfig, SparseAutoencoder } from "./sae.ts";
export { loadSaeLens, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, saveSaeLens } from "./saelens.ts";
export { type SaeTrainLogEntry, type SaeTrainOptions, trainSae } from "./train.ts";
