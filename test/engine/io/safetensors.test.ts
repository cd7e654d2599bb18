import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f32ToBf16Array, f32ToF16Array } from "../../../src/engine/io/half.ts";
import {
  readSafetensors,
  readSafetensorsCheckpoint,
  readSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
} from "../../../src/engine/io/safetensors.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io");
const golden = JSON.parse(readFileSync(join(FIX, "dtypes-golden.json"), "utf8")) as Record<string, number[]>;
const tmp = () => mkdtempSync(join(tmpdir(), "emlab-st-"));

/** Builds a file from a raw header object and data bytes, for malformed-input tests. */
function rawFile(header: unknown, data: Uint8Array, lenOverride?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(lenOverride ?? json.length));
  return Buffer.concat([len, json, data]);
}

describe("safetensors", () => {
  it("reads F32 / F16 / BF16 written by the reference library", () => {
    const { tensors, metadata } = readSafetensors(join(FIX, "dtypes.safetensors"));
    expect(metadata).toEqual({ format: "pt", note: "fixture" });
    expect(tensors.get("a.f32")!.shape).toEqual([3, 5]);
    expect(tensors.get("b.f16")!.dtype).toBe("F16");
    expect(tensors.get("scalar")!.shape).toEqual([]);
    for (const name of ["a.f32", "b.f16", "c.bf16_bits", "scalar"]) {
      expect(Array.from(tensors.get(name)!.data)).toEqual(golden[name].map(Math.fround));
    }
    expect(Object.is(tensors.get("b.f16")!.data[2], -0)).toBe(true);
  });

  it("reads float tensors into arrays from `alloc` (the kernels' memory), any dtype widened in place", () => {
    const given: Float32Array[] = [];
    const shared = new Float32Array(new SharedArrayBuffer(4096 * 4));
    let at = 0;
    const { tensors } = readSafetensors(join(FIX, "dtypes.safetensors"), {
      alloc: (n) => {
        const view = shared.subarray(at, at + n);
        at += n + 3;
        given.push(view);
        return view;
      },
    });
    for (const name of ["a.f32", "b.f16", "c.bf16_bits", "scalar"]) {
      const data = tensors.get(name)!.data;
      expect(given).toContain(data);
      expect(Array.from(data)).toEqual(golden[name].map(Math.fround));
    }
  });

  it("rounds float32 to F16 / BF16 bit-exactly like numpy / torch", () => {
    const src = Float32Array.from(golden.source_f32);
    expect(Array.from(f32ToF16Array(src))).toEqual(golden.f16_bits);
    expect(Array.from(f32ToBf16Array(src))).toEqual(golden.bf16_bits);
    const edge = Float32Array.from([65520, 1e-8, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** -24]);
    const bits = Array.from(f32ToF16Array(edge));
    expect(bits[0]).toBe(0x7c00); // rounds up past the largest half -> inf
    expect(bits[1]).toBe(0);
    expect(bits[2] & 0x7c00).toBe(0x7c00);
    expect(bits[2] & 0x3ff).not.toBe(0);
    expect(bits[3]).toBe(0xfc00);
    expect(bits[4]).toBe(1); // smallest subnormal
  });

  it("writes the exact format: padded header, sorted offsets, metadata; round-trips each dtype", () => {
    const dir = tmp();
    const tensors = new Map([
      ["w", { shape: [2, 3], data: Float32Array.from([1, -2, 0.5, 3.25, 0, -0.125]) }],
      ["b", { shape: [3], data: Float32Array.from([7, 8, 9]) }],
    ]);
    for (const dtype of ["F32", "F16", "BF16"] as const) {
      const path = join(dir, `m-${dtype}.safetensors`);
      writeSafetensors(path, tensors, { dtype, metadata: { format: "pt" } });
      const buf = readFileSync(path);
      const n = Number(buf.readBigUInt64LE(0));
      expect(n % 8).toBe(0);
      const header = JSON.parse(buf.subarray(8, 8 + n).toString());
      expect(header.__metadata__).toEqual({ format: "pt" });
      const bytes = dtype === "F32" ? 4 : 2;
      expect(header.b).toEqual({ dtype, shape: [3], data_offsets: [0, 3 * bytes] });
      expect(header.w.data_offsets).toEqual([3 * bytes, 9 * bytes]);
      expect(buf.length).toBe(8 + n + 9 * bytes);
      const back = readSafetensors(path).tensors;
      // All these values are exact in every dtype.
      expect(Array.from(back.get("w")!.data)).toEqual([1, -2, 0.5, 3.25, 0, -0.125]);
      expect(readSafetensorsHeader(path).tensors.get("w")!.dtype).toBe(dtype);
    }
  });

  it("reads sharded checkpoints through model.safetensors.index.json", () => {
    const dir = tmp();
    writeSafetensors(
      join(dir, "model-00001-of-00002.safetensors"),
      new Map([["a", { shape: [1], data: new Float32Array([1]) }]]),
    );
    writeSafetensors(
      join(dir, "model-00002-of-00002.safetensors"),
      new Map([["b", { shape: [2], data: new Float32Array([2, 3]) }]]),
    );
    const index = {
      metadata: {},
      weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" },
    };
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    const { tensors } = readSafetensorsCheckpoint(dir);
    expect([...tensors.keys()].sort()).toEqual(["a", "b"]);
    expect(Array.from(tensors.get("b")!.data)).toEqual([2, 3]);
    // Every shard's tensors go where `alloc` says.
    const given = new Set<Float32Array>();
    const alloc = (n: number) => {
      const view = new Float32Array(n);
      given.add(view);
      return view;
    };
    const viaAlloc = readSafetensorsCheckpoint(dir, { alloc }).tensors;
    expect([...viaAlloc.values()].every((t) => given.has(t.data))).toBe(true);

    index.weight_map.b = "model-00001-of-00002.safetensors";
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    expect(() => readSafetensorsCheckpoint(dir)).toThrow(
      /model-00001-of-00002.safetensors: tensor "b" listed in .* is not in this shard/,
    );
  });

  describe("errors name the file and tensor", () => {
    const dir = tmp();
    const write = (name: string, buf: Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, buf);
      return p;
    };
    const four = new Uint8Array(16);

    it("truncated file", () => {
      const p = write("short.safetensors", Buffer.from([1, 2, 3]));
      expect(() => readSafetensors(p)).toThrow(/short.safetensors: truncated/);
    });
    it("header length beyond file", () => {
      const p = write("len.safetensors", rawFile({}, four, 9999));
      expect(() => readSafetensors(p)).toThrow(/len.safetensors: header length 9999 runs past the end/);
    });
    it("offsets out of range (truncated data)", () => {
      const p = write(
        "oob.safetensors",
        rawFile({ x: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }, four),
      );
      // (16 data bytes, the tensor claims 32)
      expect(() => readSafetensors(p)).toThrow(
        /oob.safetensors: tensor "x": data_offsets \[0, 32\] out of range/,
      );
    });
    it("overlapping offsets", () => {
      const header = {
        x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        y: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      };
      const p = write("overlap.safetensors", rawFile(header, four));
      expect(() => readSafetensors(p)).toThrow(
        /overlap.safetensors: tensor "y": data_offsets overlap tensor "x"/,
      );
    });
    it("gaps and trailing bytes", () => {
      const gap = write(
        "gap.safetensors",
        rawFile({ x: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, four),
      );
      expect(() => readSafetensors(gap)).toThrow(
        /gap.safetensors: tensor "x": data_offsets leave a gap of 8 bytes/,
      );
      const trail = write(
        "trail.safetensors",
        rawFile({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, four),
      );
      expect(() => readSafetensors(trail)).toThrow(/trail.safetensors: 8 bytes after the last tensor/);
    });
    it("shape × dtype ≠ byte length", () => {
      const p = write(
        "size.safetensors",
        rawFile({ x: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, four),
      );
      expect(() => readSafetensors(p)).toThrow(
        /size.safetensors: tensor "x": shape \[3\] × F16 needs 6 bytes but data_offsets span 8/,
      );
    });
    it("unknown dtype", () => {
      const p = write(
        "dtype.safetensors",
        rawFile({ x: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, four),
      );
      expect(() => readSafetensors(p)).toThrow(/dtype.safetensors: tensor "x": unknown dtype "Q4"/);
    });
    it("bad JSON header", () => {
      const json = Buffer.from("{nope");
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      const p = write("json.safetensors", Buffer.concat([len, json]));
      expect(() => readSafetensors(p)).toThrow(/json.safetensors: header is not valid JSON/);
    });
    it("data that does not match its shape on write", () => {
      const bad = new Map([["w", { shape: [2, 2], data: new Float32Array(3) }]]);
      expect(() => serializeSafetensors(bad, {}, "out.safetensors")).toThrow(
        /out.safetensors: tensor "w": shape \[2, 2\] has 4 elements but data has 3/,
      );
    });
  });
});
