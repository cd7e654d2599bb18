// Control vectors as llama.cpp reads them (`--control-vector FILE`, `--control-vector-scaled
// FILE:SCALE`, `--control-vector-layer-range START END`), in the layout repeng's
// `ControlVector.export_gguf` and llama.cpp's cvector-generator write: a GGUF whose
// general.architecture is "controlvector", with `controlvector.model_hint` (the model's
// architecture, e.g. "llama" / "qwen2") and `controlvector.layer_count`, and one 1-D F32
// tensor `direction.N` of d_model values per steered layer.
//
// Layer numbering. llama.cpp adds the vector of layer `il` to the output of block `il`
// (0-based, after the block's FFN residual add: `build_cvec(cur, il)` just before the
// "l_out" callback in src/models/llama.cpp and qwen2.cpp), and `common_control_vector_load_one`
// (common/common.cpp) puts tensor `direction.N` in that slot for il = N. repeng's direction
// keys are block indices too (its hidden-state index is key + 1, the output of block key). So
// `direction.N` is emlab's `blocks.N.hook_resid_post`: the same number. Block 0 cannot be
// steered: llama.cpp allocates no vector for il = 0 (`llama_adapter_cvec::init`) and refuses
// a file holding `direction.0` ("invalid (zero) direction tensor layer index"). The loader
// reads tensors only; the metadata is for people and tools (repeng checks the architecture).

import {
  GgmlType,
  GgufError,
  type GgufTensorIn,
  GgufType,
  gguf,
  readGguf,
  writeGgufFile,
} from "./gguf-format.ts";

export const CONTROL_VECTOR_ARCH = "controlvector";
const HINT_KEY = `${CONTROL_VECTOR_ARCH}.model_hint`;
const COUNT_KEY = `${CONTROL_VECTOR_ARCH}.layer_count`;

export interface ControlVector {
  /** The model architecture the vector was made on (repeng: HF model_type; llama.cpp: GGUF arch). */
  modelHint: string;
  /** By emlab block index: the vector added to `blocks.{i}.hook_resid_post`. */
  directions: Map<number, Float32Array>;
}

export interface StoredControlVector extends ControlVector {
  /** `controlvector.layer_count` as stored (repeng and llama.cpp write the number of directions). */
  layerCount: number;
}

/**
 * The one place the numbering is converted: emlab block index <-> `direction.N`. The two are
 * equal (see the header); block 0 has no llama.cpp slot.
 */
export function directionTensorName(block: number): string {
  if (!Number.isInteger(block) || block < 0) throw new Error(`block ${block} is not a block index`);
  if (block === 0)
    throw new Error("block 0: llama.cpp applies control vectors from block 1 on (it refuses direction.0)");
  return `direction.${block}`;
}

/** The emlab block a `direction.N` tensor steers, or undefined when the name is not one llama.cpp accepts. */
export function blockOfDirectionTensor(name: string): number | undefined {
  const m = /^direction\.(\d+)$/.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 1 && Number.isSafeInteger(n) ? n : undefined;
}

/** Writes a control vector GGUF; tensors in block order. Errors name the file and the block. */
export function writeControlVector(path: string, cv: ControlVector): void {
  if (cv.modelHint.trim() === "") throw new GgufError(path, `${HINT_KEY}: the model hint is empty`);
  if (cv.directions.size === 0) throw new GgufError(path, "no directions to write");
  const blocks = [...cv.directions.keys()].sort((a, b) => a - b);
  const dModel = cv.directions.get(blocks[0])!.length;
  const tensors: GgufTensorIn[] = [];
  for (const block of blocks) {
    let name: string;
    try {
      name = directionTensorName(block);
    } catch (e) {
      throw new GgufError(path, (e as Error).message);
    }
    const v = cv.directions.get(block)!;
    if (v.length === 0 || v.length !== dModel)
      throw new GgufError(
        path,
        `block ${block}: direction has ${v.length} values, block ${blocks[0]}'s has ${dModel}`,
      );
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new GgufError(path, `block ${block}: value ${bad} is ${v[bad]}`);
    tensors.push({ name, shape: [v.length], type: GgmlType.F32, data: v });
  }
  writeGgufFile(
    path,
    [
      ["general.architecture", gguf.str(CONTROL_VECTOR_ARCH)],
      [HINT_KEY, gguf.str(cv.modelHint)],
      [COUNT_KEY, gguf.u32(blocks.length)],
    ],
    tensors,
  );
}

const INTEGER_TYPES = new Set([
  GgufType.UINT8,
  GgufType.INT8,
  GgufType.UINT16,
  GgufType.INT16,
  GgufType.UINT32,
  GgufType.INT32,
  GgufType.UINT64,
  GgufType.INT64,
]);

/**
 * Reads a control vector GGUF (repeng's or llama.cpp's), refusing what llama.cpp would refuse
 * (a tensor not named direction.N with N >= 1, non-F32, not 1-D, unequal lengths) and what
 * the layout requires (architecture "controlvector", a string model hint, an integer
 * layer count: repeng writes it as u32, cvector-generator as i32).
 */
export function readControlVector(path: string): StoredControlVector {
  const file = readGguf(path);
  const arch = file.metadata.get("general.architecture");
  if (arch === undefined) throw new GgufError(path, `metadata "general.architecture" is missing`);
  if (arch !== CONTROL_VECTOR_ARCH)
    throw new GgufError(
      path,
      `metadata "general.architecture" is ${JSON.stringify(arch)}, not "${CONTROL_VECTOR_ARCH}": not a control vector`,
    );
  const hint = file.metadata.get(HINT_KEY);
  if (hint === undefined) throw new GgufError(path, `metadata "${HINT_KEY}" is missing`);
  if (file.metadataTypes.get(HINT_KEY) !== GgufType.STRING)
    throw new GgufError(path, `metadata "${HINT_KEY}" is not a string`);
  const count = file.metadata.get(COUNT_KEY);
  if (count === undefined) throw new GgufError(path, `metadata "${COUNT_KEY}" is missing`);
  if (!INTEGER_TYPES.has(file.metadataTypes.get(COUNT_KEY)!) || Number(count) < 0)
    throw new GgufError(path, `metadata "${COUNT_KEY}" is not a non-negative integer`);
  if (file.tensors.length === 0) throw new GgufError(path, "holds no direction tensors");
  const directions = new Map<number, Float32Array>();
  let first: { name: string; n: number } | undefined;
  for (const t of file.tensors) {
    const block = blockOfDirectionTensor(t.name);
    if (block === undefined)
      throw new GgufError(
        path,
        `tensor "${t.name}": not a direction tensor (llama.cpp wants direction.N with N >= 1)`,
      );
    if (t.type !== GgmlType.F32)
      throw new GgufError(path, `tensor "${t.name}": ggml type ${t.type}, not F32`);
    if (t.ne.length !== 1)
      throw new GgufError(path, `tensor "${t.name}": shape [${t.shape.join(", ")}] is not 1-D`);
    if (!first) first = { name: t.name, n: t.ne[0] };
    else if (t.ne[0] !== first.n)
      throw new GgufError(path, `tensor "${t.name}": ${t.ne[0]} values, "${first.name}" has ${first.n}`);
    if (directions.has(block)) throw new GgufError(path, `tensor "${t.name}" appears twice`);
    directions.set(block, t.data!);
  }
  return {
    modelHint: hint as string,
    layerCount: Number(count),
    directions: new Map([...directions].sort((a, b) => a[0] - b[0])),
  };
}
