import { noGrad } from "./autograd.ts";
import { modelConfigFromShape } from "./config.ts";
import { modelChatTemplate, writeGgufLora, writeGgufModel } from "./io/gguf.ts";
import { loadTokenizer } from "./io/tokenizer.ts";
import { loadAdapter, mergeLora } from "./peft.ts";
import { loadModel } from "./pretrained.ts";

/** Logits [T][V] for one row of token ids of a model directory (what `emlab engine logits` prints). */
export function logitsForIds(modelDir: string, ids: number[], opts: { lora?: string } = {}): number[][] {
  const model = loadModel(modelDir);
  if (opts.lora) loadAdapter(model, opts.lora, { trainable: false });
  const V = model.shape.vocabSize;
  const logits = noGrad(() => model.forward([ids]));
  return ids.map((_, t) => Array.from(logits.data.subarray(t * V, (t + 1) * V)));
}

export interface ExportGgufOptions {
  /** A PEFT adapter directory: merged into the weights, or written alone with adapterOnly. */
  lora?: string;
  /** Write a llama.cpp LoRA-adapter GGUF instead of a merged model. */
  adapterOnly?: boolean;
  dtype?: "F32" | "F16";
  name?: string;
}

/** Writes a llama.cpp-loadable GGUF of a model directory (optionally with a LoRA merged in). */
export function exportGguf(modelDir: string, out: string, opts: ExportGgufOptions = {}): void {
  const model = loadModel(modelDir);
  const config = modelConfigFromShape(model.shape);
  if (opts.adapterOnly) {
    if (!opts.lora) throw new Error("--adapter-only needs --lora ADAPTER_DIR");
    loadAdapter(model, opts.lora, { trainable: false });
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    let rank = 0;
    for (const [path, a] of model.adapters) {
      rank = a.A.shape[0];
      tensors.set(`base_model.model.${path}.lora_A.weight`, { shape: [...a.A.shape], data: a.A.data });
      // llama.cpp scales by alpha/rank; fold any other scaling (rsLoRA) into B.
      const fold = a.scaling / (Number(model.loraConfig?.lora_alpha) / rank);
      const b = fold === 1 ? a.B.data : a.B.data.map((x) => x * fold);
      tensors.set(`base_model.model.${path}.lora_B.weight`, { shape: [...a.B.shape], data: b });
    }
    writeGgufLora(out, config, tensors, {
      alpha: Number(model.loraConfig?.lora_alpha),
      rank,
      dtype: opts.dtype,
      name: opts.name,
    });
    return;
  }
  if (opts.lora) {
    loadAdapter(model, opts.lora, { trainable: false });
    mergeLora(model);
  }
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of model.params) tensors.set(name, { shape: [...t.shape], data: t.data });
  writeGgufModel(out, config, tensors, loadTokenizer(modelDir), {
    dtype: opts.dtype,
    name: opts.name,
    chatTemplate: modelChatTemplate(modelDir),
  });
}
