import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hfConfigFromShape, type LlamaShape, modelConfigFromShape, shapeFromHfConfig } from "./config.ts";
import { resolveTiedLmHead, validateTensors } from "./io/hf-config.ts";
import { readSafetensorsCheckpoint, writeSafetensors } from "./io/safetensors.ts";
import { kernelMemory } from "./memory.ts";
import { expectedTensors, LlamaModel } from "./model.ts";
import { Tensor } from "./tensor.ts";

/** Files besides the weights that travel with a model directory. */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
];

export function readHfConfig(dir: string): { raw: Record<string, unknown>; shape: LlamaShape } {
  const file = join(dir, "config.json");
  if (!existsSync(file))
    throw new Error(`${file}: not found (a model directory needs config.json + model.safetensors)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return { raw: raw as Record<string, unknown>, shape: shapeFromHfConfig(raw, file) };
}

export interface LoadModelOptions {
  /**
   * Read the weights straight into the kernels' memory (as `pinWeights` would leave them,
   * without first holding them in JS arrays: one copy of the model, not two). For models
   * that are run, not trained; `dispose()` returns the memory. Ignored with the TS kernels.
   */
  pin?: boolean;
}

/**
 * Loads an HF-layout model directory (config.json + model.safetensors or sharded
 * safetensors). Errors name the file and the tensor.
 */
export function loadModel(dir: string, opts: LoadModelOptions = {}): LlamaModel {
  const { raw, shape: configShape } = readHfConfig(dir);
  let shape = configShape;
  const weightsFile = existsSync(join(dir, "model.safetensors.index.json"))
    ? join(dir, "model.safetensors.index.json")
    : join(dir, "model.safetensors");
  if (!existsSync(weightsFile)) throw new Error(`${weightsFile}: not found`);
  // lm_head.weight is read even when tied: a stored head that differs unties (as transformers 5).
  const wanted = new Set([...expectedTensors(shape).map(([n]) => n), "lm_head.weight"]);
  const memory = opts.pin ? kernelMemory() : null;
  const pinned = new Set<Float32Array>();
  const alloc =
    memory === null
      ? undefined
      : (length: number) => {
          let view: Float32Array;
          try {
            view = memory.alloc(length);
          } catch {
            // Kernel memory full (4 GiB): the rest stays in ordinary memory, as with pinWeights.
            return new Float32Array(length);
          }
          pinned.add(view);
          return view;
        };
  let model: LlamaModel;
  try {
    const { tensors } = readSafetensorsCheckpoint(dir, { filter: (n) => wanted.has(n), alloc });
    const config = resolveTiedLmHead(modelConfigFromShape(shape), tensors, weightsFile);
    if (config.tieWordEmbeddings !== shape.tieWordEmbeddings) shape = { ...shape, tieWordEmbeddings: false };
    // io's validation names the file and tensor (missing, wrong shape).
    validateTensors(config, tensors, weightsFile);
    const params = new Map<string, Tensor>();
    for (const [name, t] of tensors) params.set(name, new Tensor(t.data, t.shape, true));
    try {
      model = new LlamaModel(shape, params);
    } catch (e) {
      throw new Error(`${weightsFile}: ${(e as Error).message}`);
    }
    if (memory !== null) {
      // A tied lm_head that equalled the embedding was dropped: return its memory.
      const kept = new Set([...params.values()].map((t) => t.data));
      for (const view of [...pinned]) {
        if (kept.has(view)) continue;
        pinned.delete(view);
        memory.free(view);
      }
      model.adoptPinned(memory, pinned);
    }
  } catch (e) {
    if (memory !== null) for (const view of pinned) memory.free(view);
    throw e;
  }
  model.hfConfig = raw;
  return model;
}

/**
 * Saves a model as an HF-layout directory (config.json + model.safetensors in float32),
 * copying tokenizer files from `tokenizerFrom` when given.
 */
export function saveModel(model: LlamaModel, dir: string, opts: { tokenizerFrom?: string } = {}): void {
  mkdirSync(dir, { recursive: true });
  const cfg = { ...(model.hfConfig ?? {}), ...hfConfigFromShape(model.shape), torch_dtype: "float32" };
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(cfg, null, 2)}\n`);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of model.params) out.set(name, { shape: [...t.shape], data: t.data });
  writeSafetensors(join(dir, "model.safetensors"), out, { metadata: { format: "pt" } });
  if (opts.tokenizerFrom) {
    for (const f of TOKENIZER_FILES) {
      const src = join(opts.tokenizerFrom, f);
      if (existsSync(src) && src !== join(dir, f)) copyFileSync(src, join(dir, f));
    }
  }
}
