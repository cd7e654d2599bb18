/**
 * A model directory (and a PEFT adapter directory) checked without loading its weights: what
 * `loadModel`, `loadTokenizer`, `loadChatTemplate` and `loadAdapter` would refuse, found from
 * config.json, the tokenizer files and the safetensors headers and file sizes alone, so a
 * study can refuse a broken model before anything runs. Every problem names the file.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type LlamaShape, modelConfigFromShape } from "./config.ts";
import { type ChatTemplate, compileChatTemplate } from "./io/chat-template.ts";
import { type LoadedChatTemplate, loadChatTemplate } from "./io/chat-template-file.ts";
import { expectedTensorShapes, validateTensors } from "./io/hf-config.ts";
import { readSafetensorsCheckpointHeader, readSafetensorsHeader } from "./io/safetensors.ts";
import { type HfTokenizer, loadTokenizer } from "./io/tokenizer.ts";
import { RopeTable } from "./ops/rope.ts";
import { adapterModules, readAdapterConfig } from "./peft.ts";
import { readHfConfig } from "./pretrained.ts";

export interface ModelDirCheck {
  /** What is wrong, one message per problem, each naming the file (empty: the model loads). */
  problems: string[];
  /** The architecture, when config.json is fine. */
  shape?: LlamaShape;
  /** The tokenizer and its chat template, when they are fine. */
  tokenizer?: HfTokenizer;
  template?: ChatTemplate;
  /** Where the template was read, and its sha256. */
  templateFile?: Omit<LoadedChatTemplate, "template">;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function directoryProblem(dir: string, what: string): string | undefined {
  if (!existsSync(dir)) return `${what} ${dir} does not exist`;
  if (!statSync(dir).isDirectory()) return `${what} ${dir} is not a directory`;
  return undefined;
}

/**
 * Checks an HF-layout model directory the way the engine will load it: config.json (JSON, the
 * required fields and their types, rotary settings), the weights' safetensors header(s)
 * against the file sizes (header length, each tensor's offsets, dtypes, sizes; shards listed by
 * an index) and every tensor the config implies present with its shape, tokenizer.json (and
 * tokenizer_config.json) and a chat template (chat_template.jinja, tokenizer_config.json's
 * chat_template, or `opts.chatTemplate`, a .jinja file) that Jinja parses. Reads no tensor data.
 */
export function checkModelDir(dir: string, opts: { chatTemplate?: string } = {}): ModelDirCheck {
  const missing = directoryProblem(dir, "model directory");
  if (missing) return { problems: [missing] };
  const problems: string[] = [];
  let shape: LlamaShape | undefined;
  try {
    shape = readHfConfig(dir).shape;
    new RopeTable(shape.headDim, shape.ropeTheta, shape.ropeScaling);
  } catch (e) {
    problems.push(shape ? `${join(dir, "config.json")}: rope_scaling: ${message(e)}` : message(e));
    shape = undefined;
  }

  const weightsFile = existsSync(join(dir, "model.safetensors.index.json"))
    ? join(dir, "model.safetensors.index.json")
    : join(dir, "model.safetensors");
  if (!existsSync(weightsFile)) problems.push(`${weightsFile}: not found`);
  else {
    try {
      // The loader reads only the tensors the config names; so does this.
      const wanted = shape ? expectedTensorShapes(modelConfigFromShape(shape)) : undefined;
      const tensors = readSafetensorsCheckpointHeader(dir, wanted ? { filter: (n) => wanted.has(n) } : {});
      if (shape) validateTensors(modelConfigFromShape(shape), tensors, weightsFile);
    } catch (e) {
      problems.push(message(e));
    }
  }

  let tokenizer: HfTokenizer | undefined;
  let template: ChatTemplate | undefined;
  let templateFile: ModelDirCheck["templateFile"];
  try {
    tokenizer = loadTokenizer(dir);
  } catch (e) {
    problems.push(message(e));
  }
  // The model's own template (chat_template.jinja, tokenizer_config.json), or the one named.
  try {
    const loaded = loadChatTemplate(dir, { file: opts.chatTemplate });
    compileChatTemplate(loaded.template, loaded.file);
    template = loaded.template;
    templateFile = { file: loaded.file, sha256: loaded.sha256 };
  } catch (e) {
    problems.push(message(e));
  }
  return { problems, shape, tokenizer, template, templateFile };
}

/**
 * Checks a PEFT LoRA adapter directory the way `loadAdapter` will read it: adapter_config.json
 * (JSON, `r`, `lora_alpha`, nothing unsupported), adapter_model.safetensors' header against
 * its size, and — given the base model's shape — every module it targets present in the base
 * with A and B of matching shapes. Reads no tensor data.
 */
export function checkAdapterDir(dir: string, base?: LlamaShape): string[] {
  const missing = directoryProblem(dir, "adapter directory");
  if (missing) return [missing];
  const problems: string[] = [];
  let r: number | undefined;
  try {
    r = readAdapterConfig(dir).r;
  } catch (e) {
    problems.push(message(e));
  }
  const wFile = join(dir, "adapter_model.safetensors");
  if (!existsSync(wFile)) {
    problems.push(`${wFile}: not found`);
    return problems;
  }
  try {
    const { tensors } = readSafetensorsHeader(wFile);
    if (r !== undefined && base) {
      const shapes = expectedTensorShapes(modelConfigFromShape(base));
      adapterModules(tensors, r, (path) => shapes.get(`${path}.weight`), wFile);
    }
  } catch (e) {
    problems.push(message(e));
  }
  return problems;
}
