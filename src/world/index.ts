/** The persona world: generator, judge, datasets, battery sets, pretraining and the demo study. */
export * from "./battery-sets.ts";
export * from "./corpus.ts";
export * from "./datasets.ts";
export * from "./demo.ts";
export * from "./judge.ts";
export * from "./judge-prompts.ts";
export * from "./lexicon.ts";
export * from "./organism.ts";
export * from "./pretrain.ts";
export * from "./vocabulary.ts";
