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

/**
 * Reads a PEFT LoRA adapter directory and attaches it to the model (base frozen).
 * Errors name the file and the tensor.
 */
export function loadAdapter(model: LlamaModel, dir: string, opts: { trainable?: boolean } = {}): void {
  const cfgFile = join(dir, "adapter_config.json");
  const wFile = join(dir, "adapter_model.safetensors");
  if (!existsSync(cfgFile)) throw new Error(`${cfgFile}: not found`);
  if (!existsSync(wFile)) throw new Error(`${wFile}: not found`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
  } catch (e) {
    throw new Error(`${cfgFile}: not valid JSON (${(e as Error).message})`);
  }
  if (cfg.peft_type !== undefined && cfg.peft_type !== "LORA")
    throw new Error(`${cfgFile}: peft_type ${JSON.stringify(cfg.peft_type)} is not LORA`);
  const r = cfg.r;
  const alpha = cfg.lora_alpha;
  if (typeof r !== "number" || r <= 0) throw new Error(`${cfgFile}: field "r" must be a positive number`);
  if (typeof alpha !== "number") throw new Error(`${cfgFile}: field "lora_alpha" must be a number`);
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = cfg[k];
    if (v && typeof v === "object" && Object.keys(v).length > 0)
      throw new Error(`${cfgFile}: "${k}" is not supported`);
  }
  if (cfg.fan_in_fan_out === true) throw new Error(`${cfgFile}: fan_in_fan_out is not supported`);
  const scaling = loraScaling(alpha, r, cfg.use_rslora === true);
  const { tensors } = readSafetensors(wFile);
  const adapters = new Map<string, LoraAdapter>();
  const trainable = opts.trainable ?? true;
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
  for (const path of paths) {
    const get = (ab: "A" | "B") =>
      tensors.get(`${PREFIX}${path}.lora_${ab}.weight`) ??
      tensors.get(`${PREFIX}${path}.lora_${ab}.default.weight`);
    const A = get("A");
    const B = get("B");
    if (!A || !B) throw new Error(`${wFile}: module "${path}" needs both lora_A and lora_B`);
    const base = model.params.get(`${path}.weight`);
    if (!base)
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_A.weight" targets "${path}", which the model does not have`,
      );
    const [outF, inF] = base.shape;
    if (A.shape.length !== 2 || A.shape[0] !== r || A.shape[1] !== inF) {
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_A.weight" has shape [${A.shape}], expected [${r}, ${inF}]`,
      );
    }
    if (B.shape.length !== 2 || B.shape[0] !== outF || B.shape[1] !== r) {
      throw new Error(
        `${wFile}: tensor "${PREFIX}${path}.lora_B.weight" has shape [${B.shape}], expected [${outF}, ${r}]`,
      );
    }
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
