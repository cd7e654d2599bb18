// Public surface of the engine's file formats (see README.md beside this file).

export * from "./chat-template.ts";
export * from "./control-vector.ts";
export * from "./gguf.ts";
export { GgmlType, GgufError, GgufType, gguf, serializeGguf, writeGgufFile } from "./gguf-format.ts";
export * from "./hf-config.ts";
export * from "./safetensors.ts";
export * from "./tokenizer.ts";
