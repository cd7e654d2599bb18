// The GGUF v3 container: "GGUF", version, tensor count, metadata count, typed key/values,
// tensor infos (name, dims innermost-first, ggml type, offset), padding to the alignment, then
// tensor data, each tensor starting at a multiple of the alignment. Little-endian throughout.

import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { f16ToF32Array, f32ToF16Array } from "./half.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types we write/read as floats (others are listed by the reader, not decoded). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufValue =
  | { type: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar }
  | { type: GgufType.ARRAY; itemType: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar[] };

export const gguf = {
  u32: (value: number): GgufValue => ({ type: GgufType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufType.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GgufType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufType.STRING, value }),
  arr: (itemType: Exclude<GgufType, GgufType.ARRAY>, value: GgufScalar[]): GgufValue => ({
    type: GgufType.ARRAY,
    itemType,
    value,
  }),
};

export interface GgufTensorIn {
  name: string;
  /** Row-major shape as in PyTorch/HF (outermost first); stored reversed as ggml `ne`. */
  shape: number[];
  type: GgmlType;
  data: Float32Array;
}

export class GgufError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "GgufError";
  }
}

/** Growable little-endian byte writer. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  i8(v: number) {
    this.ensure(1);
    this.buf.writeInt8(v, this.length);
    this.length += 1;
  }
  u16(v: number) {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.length);
    this.length += 2;
  }
  i16(v: number) {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.length);
    this.length += 2;
  }
  u32(v: number) {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number) {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  f32(v: number) {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  f64(v: number) {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }
  u64(v: number | bigint) {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  i64(v: number | bigint) {
    this.ensure(8);
    this.buf.writeBigInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array) {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(w: ByteWriter, type: GgufType, v: GgufScalar, key: string, file: string): void {
  const num = () => {
    if (typeof v !== "number")
      throw new GgufError(file, `metadata "${key}": expected a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case GgufType.UINT8:
      w.u8(num());
      return;
    case GgufType.INT8:
      w.i8(num());
      return;
    case GgufType.UINT16:
      w.u16(num());
      return;
    case GgufType.INT16:
      w.i16(num());
      return;
    case GgufType.UINT32:
      w.u32(num());
      return;
    case GgufType.INT32:
      w.i32(num());
      return;
    case GgufType.FLOAT32:
      w.f32(num());
      return;
    case GgufType.FLOAT64:
      w.f64(num());
      return;
    case GgufType.UINT64:
      w.u64(typeof v === "bigint" ? v : num());
      return;
    case GgufType.INT64:
      w.i64(typeof v === "bigint" ? v : num());
      return;
    case GgufType.BOOL:
      w.u8(v ? 1 : 0);
      return;
    case GgufType.STRING:
      if (typeof v !== "string") throw new GgufError(file, `metadata "${key}": expected a string`);
      w.str(v);
      return;
    default:
      throw new GgufError(file, `metadata "${key}": bad type ${type}`);
  }
}

/** Header (magic .. tensor infos, padded) plus a lazy encoder for each tensor's bytes. */
function ggufLayout(
  metadata: [string, GgufValue][],
  tensors: GgufTensorIn[],
  file: string,
  alignment: number,
): { header: Buffer; payloads: (() => Uint8Array)[] } {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  const seen = new Set<string>();
  for (const [key, val] of metadata) {
    if (seen.has(key)) throw new GgufError(file, `metadata "${key}" given twice`);
    seen.add(key);
    w.str(key);
    w.u32(val.type);
    if (val.type === GgufType.ARRAY) {
      w.u32(val.itemType);
      w.u64(val.value.length);
      for (const item of val.value) writeScalar(w, val.itemType, item, key, file);
    } else writeScalar(w, val.type, val.value, key, file);
  }
  const payloads: (() => Uint8Array)[] = [];
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new GgufError(
        file,
        `tensor "${t.name}": shape [${t.shape.join(", ")}] needs ${n} values, got ${t.data.length}`,
      );
    }
    w.str(t.name);
    w.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) w.u64(t.shape[i]);
    w.u32(t.type);
    w.u64(offset);
    // Encoded only when written, so a large model is never held twice in memory.
    payloads.push(() =>
      t.type === GgmlType.F16
        ? new Uint8Array(f32ToF16Array(t.data).buffer)
        : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    );
    offset += n * (t.type === GgmlType.F16 ? 2 : 4);
    offset += (alignment - (offset % alignment)) % alignment;
  }
  w.pad(alignment);
  return { header: w.result(), payloads };
}

const padding = (length: number, alignment: number) => (alignment - (length % alignment)) % alignment;

/** Serialises a GGUF file in memory (small files; writeGgufFile streams). */
export function serializeGguf(
  metadata: [string, GgufValue][],
  tensors: GgufTensorIn[],
  file = "<memory>",
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Buffer {
  const { header, payloads } = ggufLayout(metadata, tensors, file, alignment);
  const parts: Uint8Array[] = [header];
  for (const p of payloads) {
    const bytes = p();
    parts.push(bytes, new Uint8Array(padding(bytes.length, alignment)));
  }
  return Buffer.concat(parts);
}

/** Writes a GGUF file tensor by tensor. Tensors are laid out in the given order. */
export function writeGgufFile(
  path: string,
  metadata: [string, GgufValue][],
  tensors: GgufTensorIn[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): void {
  const { header, payloads } = ggufLayout(metadata, tensors, path, alignment);
  const fd = openSync(path, "w");
  try {
    writeAll(fd, header);
    for (const p of payloads) {
      const bytes = p();
      writeAll(fd, bytes);
      writeAll(fd, new Uint8Array(padding(bytes.length, alignment)));
    }
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

export interface GgufTensorInfo {
  name: string;
  /** ggml `ne`: innermost dimension first. */
  ne: number[];
  /** Row-major (HF) shape: `ne` reversed. */
  shape: number[];
  type: number;
  /** Offset from the start of the data section. */
  offset: number;
  /** Decoded values for F32 / F16 tensors. */
  data?: Float32Array;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, GgufScalar | GgufScalar[]>;
  metadataTypes: Map<string, GgufType>;
  tensors: GgufTensorInfo[];
}

class ByteReader {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly file: string,
  ) {}
  private need(n: number, what: string) {
    if (this.pos + n > this.buf.length) {
      throw new GgufError(this.file, `truncated while reading ${what} at byte ${this.pos}`);
    }
  }
  u8(what = "u8") {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }
  u32(what = "u32") {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what = "u64") {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(this.file, `${what}: value ${v} too large`);
    return Number(v);
  }
  str(what = "string") {
    const n = this.u64(`${what} length`);
    this.need(n, what);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  scalar(type: GgufType, key: string): GgufScalar {
    const b = this.buf;
    const take = (n: number) => {
      this.need(n, `metadata "${key}"`);
      const p = this.pos;
      this.pos += n;
      return p;
    };
    switch (type) {
      case GgufType.UINT8:
        return b.readUInt8(take(1));
      case GgufType.INT8:
        return b.readInt8(take(1));
      case GgufType.UINT16:
        return b.readUInt16LE(take(2));
      case GgufType.INT16:
        return b.readInt16LE(take(2));
      case GgufType.UINT32:
        return b.readUInt32LE(take(4));
      case GgufType.INT32:
        return b.readInt32LE(take(4));
      case GgufType.FLOAT32:
        return b.readFloatLE(take(4));
      case GgufType.FLOAT64:
        return b.readDoubleLE(take(8));
      case GgufType.UINT64:
        return b.readBigUInt64LE(take(8));
      case GgufType.INT64:
        return b.readBigInt64LE(take(8));
      case GgufType.BOOL:
        return b.readUInt8(take(1)) !== 0;
      case GgufType.STRING:
        return this.str(`metadata "${key}"`);
      default:
        throw new GgufError(this.file, `metadata "${key}": unknown value type ${type}`);
    }
  }
}

/** Reads a whole GGUF file (metadata, tensor infos, and F32/F16 tensor data as float32). */
export function readGguf(path: string, opts: { data?: boolean } = {}): GgufFile {
  const fd = openSync(path, "r");
  let buf: Buffer;
  try {
    const size = fstatSync(fd).size;
    buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  const r = new ByteReader(buf, path);
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) throw new GgufError(path, "not a GGUF file (bad magic)");
  const version = r.u32("version");
  if (version !== 2 && version !== 3) throw new GgufError(path, `unsupported GGUF version ${version}`);
  const nTensors = r.u64("tensor count");
  const nKv = r.u64("metadata count");
  const metadata = new Map<string, GgufScalar | GgufScalar[]>();
  const metadataTypes = new Map<string, GgufType>();
  for (let i = 0; i < nKv; i++) {
    const key = r.str("metadata key");
    const type = r.u32(`metadata "${key}" type`) as GgufType;
    metadataTypes.set(key, type);
    if (type === GgufType.ARRAY) {
      const itemType = r.u32(`metadata "${key}" item type`) as GgufType;
      const n = r.u64(`metadata "${key}" length`);
      const items: GgufScalar[] = new Array(n);
      for (let j = 0; j < n; j++) items[j] = r.scalar(itemType, key);
      metadata.set(key, items);
    } else metadata.set(key, r.scalar(type, key));
  }
  const alignment = Number(metadata.get("general.alignment") ?? GGUF_DEFAULT_ALIGNMENT);
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = r.str("tensor name");
    const nd = r.u32(`tensor "${name}" n_dims`);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(r.u64(`tensor "${name}" dim`));
    const type = r.u32(`tensor "${name}" type`);
    const offset = r.u64(`tensor "${name}" offset`);
    if (offset % alignment !== 0)
      throw new GgufError(path, `tensor "${name}": offset ${offset} not aligned to ${alignment}`);
    tensors.push({ name, ne, shape: [...ne].reverse(), type, offset });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  if (opts.data !== false) {
    for (const t of tensors) {
      const n = t.ne.reduce((a, b) => a * b, 1);
      const bytesPer = t.type === GgmlType.F32 ? 4 : t.type === GgmlType.F16 ? 2 : 0;
      if (!bytesPer) continue;
      const start = dataStart + t.offset;
      const end = start + n * bytesPer;
      if (end > buf.length)
        throw new GgufError(path, `tensor "${t.name}": data runs past the end of the file`);
      const copy = new Uint8Array(end - start);
      copy.set(buf.subarray(start, end));
      t.data =
        t.type === GgmlType.F32 ? new Float32Array(copy.buffer) : f16ToF32Array(new Uint16Array(copy.buffer));
    }
  }
  return { version, alignment, metadata, metadataTypes, tensors };
}
