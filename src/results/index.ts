/** The schemas of results.json (zod first; every type is z.infer of its schema). */
export * from "./analysis.ts";
export * from "./battery.ts";
export * from "./common.ts";
export * from "./finetune.ts";
export * from "./interp.ts";
export * from "./results.ts";
