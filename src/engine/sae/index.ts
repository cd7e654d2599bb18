/**
 * Sparse autoencoders over the engine's hook points (issue 17, "Persona features"): the
 * model (TopK and ReLU + L1), training with hand-written gradients, metrics and the
 * spliced cross-entropy, hooks that splice / steer / clamp latents, SAELens I/O.
 */
export { type SaeArchitecture, type SaeConfig, SparseAutoencoder } from "./sae.ts";
