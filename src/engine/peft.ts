import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
import {
  LORA_TARGETS,
  LoraAdapter,
  type LoraOptions,
  type LoraTarget,
  loraScaling,
  modulePath,
} from "./lora.ts";
import type { LlamaModel } from "./model.ts";
import { Rng } from "./rng.ts";
import { Tensor } from "./tensor.ts";

const PREFIX = "base_model.model.";

function resolveTargets(model: LlamaModel, targets: LoraTarget[], layers?: number[] | null): string[] {
  const L = model.shape.layers;
  const ls = layers ?? Array.from({ length: L }, (_, i) => i);
  for (const l of ls)
    if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`LoRA layer ${l} is outside 0..${L - 1}`);
  for (const t of targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) {
      throw new Error(`unknown LoRA target "${t}" (valid: ${LORA_TARGETS.join(", ")})`);
    }
  }
  return ls.flatMap((l) => targets.map((t) => modulePath(l, t)));
}

/**
 * Attaches fresh LoRA adapters (B = 0, so the model's outputs are unchanged) and freezes
 * the base weights. Returns the PEFT adapter config describing them.
 */
export function addLora(model: LlamaModel, opts: LoraOptions): Record<string, unknown> {
  if (!(Number.isInteger(opts.rank) && opts.rank > 0))
    throw new Error(`LoRA rank must be a positive integer, got ${opts.rank}`);
  const targets = opts.targets ?? ["q_proj", "k_proj", "v_proj", "o_proj"];
  const rng = new Rng(opts.seed ?? 0);
  const scaling = loraScaling(opts.alpha, opts.rank, opts.rslora === true);
  for (const path of resolveTargets(model, targets, opts.layers)) {
    const [outF, inF] = model.param(`${path}.weight`).shape;
    model.adapters.set(path, LoraAdapter.init(inF, outF, opts.rank, scaling, opts.dropout ?? 0, rng));
  }
  model.setBaseTrainable(false);
  model.loraConfig = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: opts.rank,
    lora_alpha: opts.alpha,
    lora_dropout: opts.dropout ?? 0,
    use_rslora: opts.rslora === true,
    target_modules: targets,
    layers_to_transform: opts.layers ?? null,
    bias: "none",
    fan_in_fan_out: false,
    base_model_name_or_path: null,
  };
  return model.loraConfig;
}

/** Writes adapter_config.json + adapter_model.safetensors in PEFT's layout. */
export function saveAdapter(model: LlamaModel, dir: string, opts: { baseModel?: string } = {}): void {
  if (model.adapters.size === 0 || !model.loraConfig)
    throw new Error("saveAdapter: the model has no LoRA adapters");
  mkdirSync(dir, { recursive: true });
  const cfg = {
    ...model.loraConfig,
    base_model_name_or_path: opts.baseModel ?? model.loraConfig.base_model_name_or_path,
  };
  writeFileSync(join(dir, "adapter_config.json"), `${JSON.stringify(cfg, null, 2)}\n`);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [path, a] of model.adapters) {
    tensors.set(`${PREFIX}${path}.lora_A.weight`, { shape: [...a.A.shape], data: a.A.data });
    tensors.set(`${PREFIX}${path}.lora_B.weight`, { shape: [...a.B.shape], data: a.B.data });
  }
  writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { metadata: { format: "pt" } });
}

/** A PEFT adapter_config.json, checked: what loadAdapter needs of it. */
export interface AdapterConfig {
  file: string;
  raw: Record<string, unknown>;
  r: number;
  alpha: number;
}

/** Reads and checks `adapter_config.json` of an adapter directory. Errors name the file and field. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = join(dir, "adapter_config.json");
  if (!existsSync(file)) throw new Error(`${file}: not found`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg))
    throw new Error(`${file}: must be a JSON object`);
  if (cfg.peft_type !== undefined && cfg.peft_type !== "LORA")
    throw new Error(`${file}: peft_type ${JSON.stringify(cfg.peft_type)} is not LORA`);
  const r = cfg.r;
  const alpha = cfg.lora_alpha;
  if (typeof r !== "number" || r <= 0) throw new Error(`${file}: field "r" must be a positive number`);
  if (typeof alpha !== "number") throw new Error(`${file}: field "lora_alpha" must be a number`);
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = cfg[k];
    if (v && typeof v === "object" && Object.keys(v).length > 0)
      throw new Error(`${file}: "${k}" is not supported`);
  }
  if (cfg.fan_in_fan_out === true) throw new Error(`${file}: fan_in_fan_out is not supported`);
  return { file, raw: cfg, r, alpha };
}

/**
 * The LoRA modules of an adapter's tensors (by shape only, so a header will do): module path
 * → the names of its A and B tensors, each checked against the base weight it targets
 * (`baseShape(path)`: the shape of `<path>.weight`, undefined when the model has none).
 */
export function adapterModules(
  tensors: ReadonlyMap<string, { shape: number[] }>,
  r: number,
  baseShape: (path: string) => readonly number[] | undefined,
  wFile: string,
): Map<string, { A: string; B: string }> {
  const paths = new Set<string>();
  for (const name of tensors.keys()) {
    const m = /^base_model\.model\.(.+)\.lora_[AB](?:\.default)?\.weight$/.exec(name);
    if (!m) {
      throw new Error(
        `${wFile}: tensor "${name}" is not a LoRA weight (expected ${PREFIX}<module>.lora_A.weight)`,
      );
    }
    paths.add(m[1]);
  }
  const out = new Map<string, { A: string; B: string }>();
  for (const path of paths) {
    const nameOf = (ab: "A" | "B") =>
      [`${PREFIX}${path}.lora_${ab}.weight`, `${PREFIX}${path}.lora_${ab}.default.weight`].find((n) =>
        tensors.has(n),
      );
    const A = nameOf("A");
    const B = nameOf("B");
    if (!A || !B) throw new Error(`${wFile}: module "${path}" needs both lora_A and lora_B`);
    const base = baseShape(path);
    if (!base)
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_A.weight" targets "${path}", which the model does not have`,
      );
    const [outF, inF] = base;
    const a = tensors.get(A)!.shape;
    const b = tensors.get(B)!.shape;
    if (a.length !== 2 || a[0] !== r || a[1] !== inF) {
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_A.weight" has shape [${a}], expected [${r}, ${inF}]`,
      );
    }
    if (b.length !== 2 || b[0] !== outF || b[1] !== r) {
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_B.weight" has shape [${b}], expected [${outF}, ${r}]`,
      );
    }
    out.set(path, { A, B });
  }
  return out;
}

/**
 * Reads a PEFT LoRA adapter directory and attaches it to the model (base frozen).
 * Errors name the file and the tensor.
 */
export function loadAdapter(model: LlamaModel, dir: string, opts: { trainable?: boolean } = {}): void {
  const cfgFile = join(dir, "adapter_config.json");
  const wFile = join(dir, "adapter_model.safetensors");
  if (!existsSync(cfgFile)) throw new Error(`${cfgFile}: not found`);
  if (!existsSync(wFile)) throw new Error(`${wFile}: not found`);
  const { raw: cfg, r, alpha } = readAdapterConfig(dir);
  const scaling = loraScaling(alpha, r, cfg.use_rslora === true);
  const { tensors } = readSafetensors(wFile);
  const modules = adapterModules(tensors, r, (path) => model.params.get(`${path}.weight`)?.shape, wFile);
  const adapters = new Map<string, LoraAdapter>();
  const trainable = opts.trainable ?? true;
  for (const [path, names] of modules) {
    const A = tensors.get(names.A)!;
    const B = tensors.get(names.B)!;
    adapters.set(
      path,
      new LoraAdapter(
        new Tensor(A.data, A.shape, trainable),
        new Tensor(B.data, B.shape, trainable),
        scaling,
        typeof cfg.lora_dropout === "number" ? cfg.lora_dropout : 0,
      ),
    );
  }
  model.adapters = adapters;
  model.loraConfig = cfg;
  model.setBaseTrainable(false);
}

/** Folds every adapter into its base weight (W += s·B·A) and detaches the adapters. */
export function mergeLora(model: LlamaModel): void {
  for (const [path, a] of model.adapters) {
    const w = model.param(`${path}.weight`).data;
    const delta = a.deltaWeight();
    for (let i = 0; i < w.length; i++) w[i] += delta[i];
  }
  model.adapters = new Map();
  model.loraConfig = null;
}
