/**
 * Steering and ablation vectors on disk. Two forms, both read by `emlab serve`:
 *  - safetensors: tensors `layer.{i}` of shape [d] (or [1, d]): one direction per block, as
 *    persona directions are kept (PersonaDirections.vectors, the `layer.{i}` naming of
 *    activations.safetensors); or a single tensor of any name: one vector for every layer.
 *  - JSON: a list of numbers (one vector), or `{"layers": {"3": [...], ...}}` (per block).
 *  - a llama.cpp / repeng control vector GGUF (told by its magic, whatever the name):
 *    `direction.N` is block N's vector, added to blocks.N.hook_resid_post, which is where
 *    llama.cpp adds it; so serving with it at --alpha a steers as llama.cpp's
 *    `--control-vector-scaled FILE:a` does.
 * `saveVectors` writes the first form.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { readControlVector } from "../engine/io/control-vector.ts";
import { GGUF_MAGIC } from "../engine/io/gguf-format.ts";
import { readSafetensors, writeSafetensors } from "../engine/io/safetensors.ts";
import type { VectorSpec } from "../interp/interventions.ts";

export interface VectorFile {
  file: string;
  /** sha256 of the file's bytes: what /v1/models reports, so a result can name its edit. */
  sha256: string;
  vectors: VectorSpec;
  /** Blocks the file has vectors for; null for one vector meant for any layer. */
  layers: number[] | null;
  dim: number;
}

const LAYER_NAME = /^layer\.(\d+)$/;

const JsonVector = z.array(z.number()).min(1);
const JsonLayers = z.object({ layers: z.record(z.string().regex(/^\d+$/), JsonVector) }).strict();

function fromMap(file: string, sha256: string, byLayer: Map<number, Float32Array>): VectorFile {
  if (byLayer.size === 0) throw new Error(`${file}: no vectors`);
  const dims = new Set([...byLayer.values()].map((v) => v.length));
  if (dims.size !== 1) throw new Error(`${file}: vectors of different lengths (${[...dims].join(", ")})`);
  for (const [l, v] of byLayer)
    if (!v.every(Number.isFinite)) throw new Error(`${file}: layer.${l} has a non-finite value`);
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  return { file, sha256, vectors: byLayer, layers, dim: [...dims][0] };
}

function single(file: string, sha256: string, v: Float32Array): VectorFile {
  if (!v.every(Number.isFinite)) throw new Error(`${file}: the vector has a non-finite value`);
  return { file, sha256, vectors: v, layers: null, dim: v.length };
}

export function loadVectorFile(file: string): VectorFile {
  const bytes = readFileSync(file);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === GGUF_MAGIC)
    // readControlVector's errors name the file and the key or tensor.
    return fromMap(file, sha256, readControlVector(file).directions);
  if (file.endsWith(".gguf")) throw new Error(`${file}: not a GGUF file (no GGUF magic)`);
  if (file.endsWith(".json")) {
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    // Each form checked on its own, so an error names the field that is wrong.
    const r = Array.isArray(raw) ? JsonVector.safeParse(raw) : JsonLayers.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new Error(
        `${file}: ${issue.path.join(".") || "(top level)"}: expected a list of numbers or {"layers": {"<block>": [numbers]}} (${issue.message})`,
      );
    }
    if (Array.isArray(r.data)) return single(file, sha256, Float32Array.from(r.data));
    return fromMap(
      file,
      sha256,
      new Map(Object.entries(r.data.layers).map(([l, v]) => [Number(l), Float32Array.from(v)])),
    );
  }
  if (!file.endsWith(".safetensors"))
    throw new Error(`${file}: a vector file is .safetensors, .json or a control vector .gguf`);
  const { tensors } = readSafetensors(file);
  const vector = (name: string, shape: number[]) => {
    if (shape.length === 1 || (shape.length === 2 && shape[0] === 1)) return;
    throw new Error(`${file}: tensor ${name} has shape [${shape.join(", ")}]; a vector is [d] or [1, d]`);
  };
  const byLayer = new Map<number, Float32Array>();
  const others: string[] = [];
  for (const [name, t] of tensors) {
    const m = LAYER_NAME.exec(name);
    if (!m) {
      others.push(name);
      continue;
    }
    vector(name, t.shape);
    byLayer.set(Number(m[1]), t.data);
  }
  if (byLayer.size > 0) {
    if (others.length > 0)
      throw new Error(`${file}: tensors ${others.join(", ")} are not named layer.<block> like the others`);
    return fromMap(file, sha256, byLayer);
  }
  if (others.length !== 1)
    throw new Error(
      `${file}: ${others.length} tensors (${others.join(", ")}); expected layer.<block> tensors or exactly one vector`,
    );
  const t = tensors.get(others[0])!;
  vector(others[0], t.shape);
  return single(file, sha256, t.data);
}

/** Writes one direction per block as `layer.{i}` tensors (what loadVectorFile reads). */
export function saveVectors(file: string, byLayer: ReadonlyMap<number, ArrayLike<number>>): void {
  const tensors = new Map(
    [...byLayer].map(([l, v]) => [`layer.${l}`, { shape: [v.length], data: Float32Array.from(v) }]),
  );
  writeSafetensors(file, tensors);
}
