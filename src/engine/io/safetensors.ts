// safetensors reader/writer: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets:[begin,end]}, __metadata__: {string: string}},
// padded with spaces to a multiple of 8 bytes (as the HF Rust writer does), then the raw
// little-endian tensor bytes. Tensors come out as Float32Array whatever the stored dtype.

import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { bf16ToF32Array, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from "./half.ts";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I32" | "I16" | "I8" | "U8" | "BOOL";
export type WritableDtype = "F32" | "F16" | "BF16";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
/** Dtypes of the format that we recognise but cannot represent exactly as float32. */
const KNOWN_UNSUPPORTED = new Set([
  "I64",
  "U64",
  "U32",
  "U16",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
]);

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range inside the data section (after the header). */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  file: string;
  /** Bytes before the data section: 8 + header length. */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export interface LoadedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface WritableTensor {
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

const MAX_HEADER_BYTES = 100_000_000; // the HF reader's own limit

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function parseHeader(file: string, headerBytes: Buffer, dataBytes: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString("utf8"));
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsError(file, "header must be a JSON object");
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new SafetensorsError(file, "__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") throw new SafetensorsError(file, `__metadata__.${k} must be a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof raw !== "object" || raw === null)
      throw new SafetensorsError(file, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string") throw new SafetensorsError(file, `${where}: missing dtype`);
    if (!(dtype in DTYPE_BYTES)) {
      const why = KNOWN_UNSUPPORTED.has(dtype) ? "unsupported dtype" : "unknown dtype";
      throw new SafetensorsError(
        file,
        `${where}: ${why} "${dtype}" (supported: ${Object.keys(DTYPE_BYTES).join(", ")})`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `${where}: shape must be an array of non-negative integers`);
    }
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      throw new SafetensorsError(file, `${where}: data_offsets must be [begin, end]`);
    }
    const [begin, end] = data_offsets as [number, number];
    if (begin > end || end > dataBytes) {
      throw new SafetensorsError(
        file,
        `${where}: data_offsets [${begin}, ${end}] out of range (data section is ${dataBytes} bytes; file truncated?)`,
      );
    }
    const want = numel(shape) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== want) {
      throw new SafetensorsError(
        file,
        `${where}: shape [${shape.join(", ")}] × ${dtype} needs ${want} bytes but data_offsets span ${end - begin}`,
      );
    }
    tensors.set(name, {
      dtype: dtype as SafetensorsDtype,
      shape: shape as number[],
      dataOffsets: [begin, end],
    });
  }
  // Like the HF reader: tensors must tile the data section exactly, no overlap, no gap, no
  // trailing bytes (a mismatch usually means a corrupted header or a truncated/appended file).
  const byStart = [...tensors.entries()].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  let end = 0;
  let prevName = "";
  for (const [name, cur] of byStart) {
    const [b, e] = cur.dataOffsets;
    if (b < end)
      throw new SafetensorsError(file, `tensor "${name}": data_offsets overlap tensor "${prevName}"`);
    if (b > end) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": data_offsets leave a gap of ${b - end} bytes before it`,
      );
    }
    end = e;
    prevName = name;
  }
  if (end !== dataBytes) {
    throw new SafetensorsError(
      file,
      `${dataBytes - end} bytes after the last tensor (header and data disagree)`,
    );
  }
  return { file, dataStart: 0, tensors, metadata };
}

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function readHeaderFd(file: string, fd: number): SafetensorsHeader {
  const size = fstatSync(fd).size;
  if (size < 8)
    throw new SafetensorsError(file, `truncated: ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = readExactly(fd, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES)
    throw new SafetensorsError(file, `header length ${headerLen} is implausibly large`);
  if (8 + headerLen > size) {
    throw new SafetensorsError(
      file,
      `header length ${headerLen} runs past the end of the file (${size} bytes)`,
    );
  }
  const header = parseHeader(file, readExactly(fd, headerLen, 8), size - 8 - headerLen);
  header.dataStart = 8 + headerLen;
  return header;
}

/** Reads only the header: names, dtypes, shapes, offsets, metadata. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, "r");
  try {
    return readHeaderFd(path, fd);
  } finally {
    closeSync(fd);
  }
}

function decode(dtype: SafetensorsDtype, bytes: Buffer): Float32Array {
  // Copy into an aligned buffer: the slice may start at any byte offset.
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  switch (dtype) {
    case "F32":
      return new Float32Array(ab);
    case "F16":
      return f16ToF32Array(new Uint16Array(ab));
    case "BF16":
      return bf16ToF32Array(new Uint16Array(ab));
    case "F64":
      return Float32Array.from(new Float64Array(ab));
    case "I32":
      return Float32Array.from(new Int32Array(ab));
    case "I16":
      return Float32Array.from(new Int16Array(ab));
    case "I8":
      return Float32Array.from(new Int8Array(ab));
    case "U8":
    case "BOOL":
      return Float32Array.from(new Uint8Array(ab));
  }
}

/** Bytes per read while streaming a tensor into its array (bounds the temporary buffer for F16/BF16). */
const CHUNK_BYTES = 32 << 20;

/**
 * Reads one F32 / F16 / BF16 tensor straight into `out` (no whole-tensor staging buffer):
 * F32 bytes land in `out`'s own memory, half floats are widened chunk by chunk. Returns
 * false when the file ends early.
 */
function readInto(fd: number, dtype: "F32" | "F16" | "BF16", position: number, out: Float32Array): boolean {
  if (dtype === "F32") {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, Math.min(CHUNK_BYTES, bytes.length - got), position + got);
      if (n === 0) return false;
      got += n;
    }
    return true;
  }
  // Its own ArrayBuffer, so the Uint16Array view is aligned.
  const chunk = new Uint8Array(Math.min(CHUNK_BYTES, out.length * 2));
  const halves = new Uint16Array(chunk.buffer);
  const widen = dtype === "F16" ? f16ToF32Array : bf16ToF32Array;
  for (let at = 0; at < out.length; ) {
    const count = Math.min(halves.length, out.length - at);
    let got = 0;
    while (got < count * 2) {
      const n = readSync(fd, chunk, got, count * 2 - got, position + at * 2 + got);
      if (n === 0) return false;
      got += n;
    }
    // (half.ts types its output as ArrayBuffer-backed; a SharedArrayBuffer view works the same.)
    widen(halves.subarray(0, count), out.subarray(at, at + count) as Float32Array<ArrayBuffer>);
    at += count;
  }
  return true;
}

export interface ReadOptions {
  /** Only load tensors whose name passes (others are not read from disk). */
  filter?: (name: string) => boolean;
  /**
   * Where an F32 / F16 / BF16 tensor of `length` floats is read (default: a new
   * Float32Array). The engine passes the kernels' memory, so weights are read there once
   * instead of into a JS array and then copied.
   */
  alloc?: (length: number) => Float32Array;
}

export function readSafetensors(
  path: string,
  opts: ReadOptions = {},
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const fd = openSync(path, "r");
  try {
    const header = readHeaderFd(path, fd);
    const tensors = new Map<string, LoadedTensor>();
    for (const [name, info] of header.tensors) {
      if (opts.filter && !opts.filter(name)) continue;
      const [begin, end] = info.dataOffsets;
      const dtype = info.dtype;
      if (dtype === "F32" || dtype === "F16" || dtype === "BF16") {
        const n = numel(info.shape);
        const data = opts.alloc ? opts.alloc(n) : new Float32Array(n);
        if (!readInto(fd, dtype, header.dataStart + begin, data))
          throw new SafetensorsError(path, `tensor "${name}": file truncated`);
        tensors.set(name, { dtype, shape: [...info.shape], data });
        continue;
      }
      const bytes = readExactly(fd, end - begin, header.dataStart + begin);
      if (bytes.length !== end - begin) throw new SafetensorsError(path, `tensor "${name}": file truncated`);
      tensors.set(name, { dtype: info.dtype, shape: [...info.shape], data: decode(info.dtype, bytes) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

function encode(dtype: WritableDtype, data: Float32Array): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const half = dtype === "F16" ? f32ToF16Array(data) : f32ToBf16Array(data);
  return new Uint8Array(half.buffer);
}

export interface WriteOptions {
  dtype?: WritableDtype;
  metadata?: Record<string, string>;
}

/** Header bytes (length prefix + padded JSON) and a lazy encoder per tensor, in name order. */
function safetensorsLayout(
  tensors: Map<string, WritableTensor>,
  opts: WriteOptions,
  file: string,
): { header: Buffer; payloads: (() => Uint8Array)[] } {
  const dtype = opts.dtype ?? "F32";
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length > 0) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== "string") throw new SafetensorsError(file, `metadata.${k} must be a string`);
    }
    header.__metadata__ = opts.metadata;
  }
  const names = [...tensors.keys()].sort();
  const payloads: (() => Uint8Array)[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    if (numel(t.shape) !== t.data.length) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": shape [${t.shape.join(", ")}] has ${numel(t.shape)} elements but data has ${t.data.length}`,
      );
    }
    const size = t.data.length * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    // Encoded only when written, so a large model is never held twice in memory.
    payloads.push(() => encode(dtype, t.data));
    offset += size;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - (jsonBytes % 8)) % 8);
  const headerBuf = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));
  return { header: Buffer.concat([lenBuf, headerBuf]), payloads };
}

/** Serialises tensors to safetensors bytes in memory (tensors laid out in name order). */
export function serializeSafetensors(
  tensors: Map<string, WritableTensor>,
  opts: WriteOptions = {},
  file = "<memory>",
): Buffer {
  const { header, payloads } = safetensorsLayout(tensors, opts, file);
  return Buffer.concat([header, ...payloads.map((p) => p())]);
}

/** Writes a safetensors file tensor by tensor. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, WritableTensor>,
  opts: WriteOptions = {},
): void {
  const { header, payloads } = safetensorsLayout(tensors, opts, path);
  const fd = openSync(path, "w");
  try {
    writeAll(fd, header);
    for (const p of payloads) writeAll(fd, p());
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Where a checkpoint's tensors are: one file, or the shards an index names (filtered names per shard). */
type CheckpointLayout =
  | { kind: "file"; file: string }
  | { kind: "sharded"; indexPath: string; shards: Map<string, string[]> };

function checkpointLayout(path: string, opts: ReadOptions): CheckpointLayout {
  let indexPath: string | undefined;
  if (path.endsWith(".index.json")) indexPath = path;
  else if (path.endsWith(".safetensors")) return { kind: "file", file: path };
  else if (existsSync(join(path, "model.safetensors.index.json")))
    indexPath = join(path, "model.safetensors.index.json");
  else return { kind: "file", file: join(path, "model.safetensors") };

  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, "utf8"));
  } catch (e) {
    throw new SafetensorsError(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null)
    throw new SafetensorsError(indexPath, "missing weight_map");
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string")
      throw new SafetensorsError(indexPath, `weight_map["${name}"] must be a file name`);
    if (opts.filter && !opts.filter(name)) continue;
    if (!shards.has(shard)) shards.set(shard, []);
    shards.get(shard)!.push(name);
  }
  for (const [shard, names] of shards) {
    if (!existsSync(join(dirname(indexPath), shard)))
      throw new SafetensorsError(indexPath, `shard "${shard}" (for "${names[0]}") not found`);
  }
  return { kind: "sharded", indexPath, shards };
}

/**
 * Loads every tensor of a checkpoint directory: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json` (checking each listed tensor is in the shard the index names).
 * `path` may also be a single .safetensors file or an index file.
 */
export function readSafetensorsCheckpoint(
  path: string,
  opts: ReadOptions = {},
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const layout = checkpointLayout(path, opts);
  if (layout.kind === "file") return readSafetensors(layout.file, opts);
  const { indexPath, shards } = layout;
  const tensors = new Map<string, LoadedTensor>();
  const metadata: Record<string, string> = {};
  for (const [shard, names] of shards) {
    const shardPath = join(dirname(indexPath), shard);
    const wanted = new Set(names);
    const got = readSafetensors(shardPath, { filter: (n) => wanted.has(n), alloc: opts.alloc });
    for (const name of names) {
      const t = got.tensors.get(name);
      if (!t)
        throw new SafetensorsError(shardPath, `tensor "${name}" listed in ${indexPath} is not in this shard`);
      tensors.set(name, t);
    }
    Object.assign(metadata, got.metadata);
  }
  return { tensors, metadata };
}

/**
 * What `readSafetensorsCheckpoint` would load, from the headers alone: every header parsed and
 * checked against its file's size (header length, each tensor's offsets inside the data
 * section, dtypes, sizes), and each tensor the index lists found in its shard. Reads no
 * tensor data, so it is fast whatever the size of the weights.
 */
export function readSafetensorsCheckpointHeader(
  path: string,
  opts: ReadOptions = {},
): Map<string, TensorInfo & { file: string }> {
  const layout = checkpointLayout(path, opts);
  const out = new Map<string, TensorInfo & { file: string }>();
  if (layout.kind === "file") {
    const header = readSafetensorsHeader(layout.file);
    for (const [name, info] of header.tensors) {
      if (!opts.filter || opts.filter(name)) out.set(name, { ...info, file: layout.file });
    }
    return out;
  }
  const { indexPath, shards } = layout;
  for (const [shard, names] of shards) {
    const shardPath = join(dirname(indexPath), shard);
    const header = readSafetensorsHeader(shardPath);
    for (const name of names) {
      const info = header.tensors.get(name);
      if (!info)
        throw new SafetensorsError(shardPath, `tensor "${name}" listed in ${indexPath} is not in this shard`);
      out.set(name, { ...info, file: shardPath });
    }
  }
  return out;
}
