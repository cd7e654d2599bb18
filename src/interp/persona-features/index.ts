/**
 * Persona features (Wang et al. 2025, arXiv 2506.19823): an SAE's latents read on a corpus
 * with its speakers (corpus.ts), model diffing base vs fine-tuned through the SAE (diff.ts),
 * and latent cards — top pretraining contexts, speaker mix, histogram, promoted tokens (cards.ts).
 */
export * from "./cards.ts";
export * from "./corpus.ts";
export * from "./diff.ts";
