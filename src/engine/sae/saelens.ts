import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { type SaeConfig, SparseAutoencoder } from "./sae.ts";

/**
 * The SAELens 6.x on-disk layout: a directory with cfg.json (SAEConfig.to_dict(): d_in,
 * d_sae, dtype, device, apply_b_dec_to_input, normalize_activations, reshape_activations,
 * metadata {sae_lens_version, hook_name, model_name, ...}, architecture, and k for topk) and
 * sae_weights.safetensors (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec).
 * `SAE.load_from_disk(dir)` reads what saveSaeLens writes. A metadata.sae_lens_version of
 * 6 or later matters: without it sae_lens rewrites the config as a pre-6 one.
 */

export const SAE_CFG_FILENAME = "cfg.json";
export const SAE_WEIGHTS_FILENAME = "sae_weights.safetensors";
/** The sae_lens version the layout follows (written as metadata.sae_lens_version). */
const SAE_LENS_VERSION = "6.54.12";

// metadata keys that map onto SaeConfig fields (the rest go to / come from cfg.extra).
const METADATA_FIELDS = new Set([
  "hook_name",
  "hook_layer",
  "model_name",
  "sae_lens_version",
  "sae_lens_training_version",
]);
// top-level keys read here; any other top-level key is refused or kept in extra.
const TOP_LEVEL = new Set([
  "architecture",
  "d_in",
  "d_sae",
  "k",
  "dtype",
  "device",
  "apply_b_dec_to_input",
  "normalize_activations",
  "reshape_activations",
  "rescale_acts_by_decoder_norm",
  "metadata",
  "hook_name",
  "hook_layer",
  "model_name",
]);
const DTYPES = new Set(["float32", "float16", "bfloat16"]);

/** Writes cfg.json + sae_weights.safetensors (float32) into `dir`, creating it. */
export function saveSaeLens(dir: string, sae: SparseAutoencoder): void {
  const c = sae.cfg;
  mkdirSync(dir, { recursive: true });
  const metadata: Record<string, unknown> = {
    sae_lens_version: SAE_LENS_VERSION,
    sae_lens_training_version: SAE_LENS_VERSION,
    ...(c.extra ?? {}),
    hook_name: c.hookName,
    hook_layer: c.hookLayer,
  };
  if (c.modelName !== undefined) metadata.model_name = c.modelName;
  const cfg: Record<string, unknown> = {
    d_in: c.dIn,
    d_sae: c.dSae,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: c.applyBDecToInput,
    normalize_activations: c.normalizeActivations,
    reshape_activations: "none",
    metadata,
  };
  if (c.architecture === "topk") {
    cfg.k = c.k;
    cfg.rescale_acts_by_decoder_norm = false;
  }
  cfg.architecture = c.architecture === "topk" ? "topk" : "standard";
  const { dIn, dSae } = c;
  writeSafetensors(
    join(dir, SAE_WEIGHTS_FILENAME),
    new Map([
      ["W_enc", { shape: [dIn, dSae], data: sae.wEnc }],
      ["b_enc", { shape: [dSae], data: sae.bEnc }],
      ["W_dec", { shape: [dSae, dIn], data: sae.wDec }],
      ["b_dec", { shape: [dIn], data: sae.bDec }],
    ]),
  );
  writeFileSync(join(dir, SAE_CFG_FILENAME), `${JSON.stringify(cfg, null, 2)}\n`);
}

/**
 * Reads an SAELens directory. Errors start with the file's path and name the key or
 * tensor: unknown / unimplemented architectures (jumprelu, gated, ...), normalisations
 * other than "none", dtypes other than float32 / float16 / bfloat16 (half weights are
 * widened to float32), missing tensors, wrong shapes.
 */
export function loadSaeLens(dir: string): SparseAutoencoder {
  const cfgPath = join(dir, SAE_CFG_FILENAME);
  const weightsPath = join(dir, SAE_WEIGHTS_FILENAME);
  if (!existsSync(cfgPath))
    throw new Error(
      `${cfgPath}: no such file (an SAELens SAE directory has ${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME})`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (e) {
    throw new Error(`${cfgPath}: not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new Error(`${cfgPath}: must hold a JSON object`);
  const cfg = saeConfigFromSaeLens(raw as Record<string, unknown>, cfgPath);

  if (!existsSync(weightsPath)) throw new Error(`${weightsPath}: no such file`);
  const { tensors } = readSafetensors(weightsPath);
  const { dIn, dSae } = cfg;
  const want: [string, number[]][] = [
    ["W_enc", [dIn, dSae]],
    ["b_enc", [dSae]],
    ["W_dec", [dSae, dIn]],
    ["b_dec", [dIn]],
  ];
  const got: Float32Array[] = [];
  for (const [name, shape] of want) {
    const t = tensors.get(name);
    if (!t)
      throw new Error(`${weightsPath}: missing tensor "${name}" (expected shape [${shape.join(", ")}])`);
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw new Error(
        `${weightsPath}: tensor "${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}] (d_in ${dIn}, d_sae ${dSae} in ${SAE_CFG_FILENAME})`,
      );
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16")
      throw new Error(`${weightsPath}: tensor "${name}" has dtype ${t.dtype}; F32, F16 or BF16 expected`);
    for (let i = 0; i < t.data.length; i++)
      if (!Number.isFinite(t.data[i]))
        throw new Error(`${weightsPath}: tensor "${name}" has a non-finite value at ${i}`);
    got.push(t.data);
  }
  return new SparseAutoencoder(cfg, got[0], got[1], got[2], got[3]);
}

/** SaeConfig from a parsed cfg.json; `file` prefixes every error. */
export function saeConfigFromSaeLens(raw: Record<string, unknown>, file: string): SaeConfig {
  const fail = (key: string, msg: string): never => {
    throw new Error(`${file}: ${key} ${msg}`);
  };
  const arch = raw.architecture ?? "standard";
  if (arch !== "topk" && arch !== "standard")
    fail(
      "architecture",
      `is ${JSON.stringify(arch)}; emlab implements "topk" and "standard" (ReLU) SAEs only`,
    );
  const int = (key: string, v: unknown): number =>
    typeof v === "number" && Number.isInteger(v) && v > 0
      ? v
      : fail(key, `must be a positive integer, got ${JSON.stringify(v)}`);
  const dIn = int("d_in", raw.d_in);
  const dSae = int("d_sae", raw.d_sae);
  let k: number | undefined;
  if (arch === "topk") {
    k = int("k", raw.k);
    if (k > dSae) fail("k", `(${k}) exceeds d_sae (${dSae})`);
    if (raw.rescale_acts_by_decoder_norm !== undefined && raw.rescale_acts_by_decoder_norm !== false)
      fail("rescale_acts_by_decoder_norm", "must be false (rescaled TopK selection is not implemented)");
  }
  const dtype = String(raw.dtype ?? "float32").replace(/^torch\./, "");
  if (!DTYPES.has(dtype))
    fail("dtype", `is ${JSON.stringify(raw.dtype)}; float32, float16 or bfloat16 expected`);
  const norm = raw.normalize_activations ?? "none";
  if (norm !== "none")
    fail("normalize_activations", `is ${JSON.stringify(norm)}; only "none" is implemented`);
  const reshape = raw.reshape_activations ?? "none";
  if (reshape !== "none")
    fail("reshape_activations", `is ${JSON.stringify(reshape)}; only "none" is implemented`);
  const apply = raw.apply_b_dec_to_input ?? true;
  if (typeof apply !== "boolean")
    fail("apply_b_dec_to_input", `must be true or false, got ${JSON.stringify(apply)}`);

  const meta = raw.metadata ?? {};
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) fail("metadata", "must be an object");
  const m = meta as Record<string, unknown>;
  // sae_lens 6 keeps hook_name in metadata; older files have it at the top level.
  const hookName = m.hook_name ?? raw.hook_name;
  if (typeof hookName !== "string" || hookName === "")
    fail(
      "metadata.hook_name",
      `must be a non-empty string (e.g. "blocks.1.hook_resid_post"), got ${JSON.stringify(hookName)}`,
    );
  let hookLayer = m.hook_layer ?? raw.hook_layer;
  if (hookLayer === undefined || hookLayer === null) {
    const match = /^blocks\.(\d+)\./.exec(hookName as string);
    if (!match) fail("metadata.hook_layer", `is missing and hook name "${hookName}" names no block`);
    hookLayer = Number(match?.[1]);
  }
  if (typeof hookLayer !== "number" || !Number.isInteger(hookLayer) || hookLayer < 0)
    fail("metadata.hook_layer", `must be a non-negative integer, got ${JSON.stringify(hookLayer)}`);
  const modelName = m.model_name ?? raw.model_name;
  if (modelName !== undefined && modelName !== null && typeof modelName !== "string")
    fail("metadata.model_name", `must be a string, got ${JSON.stringify(modelName)}`);

  const extra: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(m)) if (!METADATA_FIELDS.has(key)) extra[key] = v;
  for (const [key, v] of Object.entries(raw)) if (!TOP_LEVEL.has(key)) extra[key] = v;
  const cfg: SaeConfig = {
    architecture: arch === "topk" ? "topk" : "relu",
    dIn,
    dSae,
    hookName: hookName as string,
    hookLayer: hookLayer as number,
    applyBDecToInput: apply as boolean,
    normalizeActivations: "none",
  };
  if (k !== undefined) cfg.k = k;
  if (typeof modelName === "string") cfg.modelName = modelName;
  if (Object.keys(extra).length > 0) cfg.extra = extra;
  return cfg;
}
