import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { noGrad } from "../../src/engine/autograd.ts";
import { getKernels } from "../../src/engine/kernels/index.ts";
import type { WasmMatmulKernels } from "../../src/engine/kernels/wasm-matmul.ts";
import { kernelMemory } from "../../src/engine/memory.ts";
import { loadModel, saveModel } from "../../src/engine/pretrained.ts";

const FIX = join(import.meta.dirname, "../fixtures/engine");

function golden(name: string): { ids: number[][]; logits: number[][][] } {
  return JSON.parse(readFileSync(join(FIX, name, "golden.json"), "utf8"));
}

function maxDiff(a: Float32Array, b: number[][][]): number {
  const flat = b.flat(2);
  expect(a.length).toBe(flat.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - flat[i]));
  return m;
}

describe("LlamaModel forward matches the PyTorch reference", () => {
  for (const name of ["llama_gqa", "qwen2_bias_tied", "llama_tied_gqa", "llama3_rope"]) {
    it(`${name}: logits within 1e-4`, () => {
      const model = loadModel(join(FIX, name));
      const g = golden(name);
      const logits = noGrad(() => model.forward(g.ids));
      expect(logits.shape).toEqual([g.ids.length, g.ids[0].length, model.shape.vocabSize]);
      expect(maxDiff(logits.data, g.logits)).toBeLessThan(1e-4);
    });
  }

  it("pinned weights (in the kernels' memory) give the same logits, and dispose frees them", () => {
    const model = loadModel(join(FIX, "llama_gqa"));
    const g = golden("llama_gqa");
    const before = noGrad(() => model.forward(g.ids)).data;
    const moved = model.pinWeights();
    // The WASM kernels have their own memory; the TS fallback has none.
    expect(moved === 0 || moved === model.params.size).toBe(true);
    expect(Array.from(noGrad(() => model.forward(g.ids)).data)).toEqual(Array.from(before));
    model.unpinWeights();
    expect(Array.from(noGrad(() => model.forward(g.ids)).data)).toEqual(Array.from(before));
    model.pinWeights();
    model.dispose();
    if (moved > 0) expect(() => noGrad(() => model.forward(g.ids))).toThrow();
  });

  it("loadModel with pin reads the weights straight into the kernels' memory (same logits, freed by dispose)", () => {
    const g = golden("qwen2_bias_tied");
    const plain = loadModel(join(FIX, "qwen2_bias_tied"));
    const want = Array.from(noGrad(() => plain.forward(g.ids)).data);
    const mem = kernelMemory();
    const probe = mem?.alloc(16);
    if (mem && probe) mem.free(probe);
    const model = loadModel(join(FIX, "qwen2_bias_tied"), { pin: true });
    expect(Array.from(noGrad(() => model.forward(g.ids)).data)).toEqual(want);
    if (mem && probe) {
      const k = getKernels() as WasmMatmulKernels;
      for (const t of model.params.values()) expect(k.isWasmBacked(t.data)).toBe(true);
      // Already pinned: nothing more to move.
      expect(model.pinWeights()).toBe(0);
      model.dispose();
      // Everything loadModel allocated is back: the next block starts where the probe did.
      const again = mem.alloc(16);
      expect(again.byteOffset).toBe(probe.byteOffset);
      mem.free(again);
    }
  });

  it("save → load round-trips the weights and logits", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-engine-"));
    try {
      const model = loadModel(join(FIX, "qwen2_bias_tied"));
      saveModel(model, dir, { tokenizerFrom: join(FIX, "qwen2_bias_tied") });
      const again = loadModel(dir);
      const g = golden("qwen2_bias_tied");
      expect(maxDiff(noGrad(() => again.forward(g.ids)).data, g.logits)).toBeLessThan(1e-4);
      expect(readFileSync(join(dir, "tokenizer.json"), "utf8")).toBe(
        readFileSync(join(FIX, "qwen2_bias_tied", "tokenizer.json"), "utf8"),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bad model directories give errors naming the file and tensor", () => {
  const src = join(FIX, "llama_gqa");
  function withDir(edit: (dir: string) => void, expected: RegExp): void {
    const dir = mkdtempSync(join(tmpdir(), "emlab-bad-"));
    try {
      for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
        copyFileSync(join(src, f), join(dir, f));
      edit(dir);
      expect(() => loadModel(dir)).toThrow(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const cfg = () => JSON.parse(readFileSync(join(src, "config.json"), "utf8"));

  it("missing config.json / model.safetensors", () => {
    withDir((d) => rmSync(join(d, "config.json")), /config\.json: not found/);
    withDir((d) => rmSync(join(d, "model.safetensors")), /model\.safetensors/);
  });

  it("unknown model_type", () => {
    withDir(
      (d) => writeFileSync(join(d, "config.json"), JSON.stringify({ ...cfg(), model_type: "gpt2" })),
      /config\.json: field "model_type": unsupported model_type "gpt2"/,
    );
  });

  it("wrong shapes name the tensor", () => {
    withDir(
      (d) => writeFileSync(join(d, "config.json"), JSON.stringify({ ...cfg(), intermediate_size: 41 })),
      /model\.safetensors: tensor "model\.layers\.0\.mlp\.gate_proj\.weight": shape \[40, 32\], expected \[41, 32\]/,
    );
  });

  it("missing tensor", () => {
    withDir(
      (d) => writeFileSync(join(d, "config.json"), JSON.stringify({ ...cfg(), num_hidden_layers: 3 })),
      /model\.safetensors: tensor "model\.layers\.2\.input_layernorm\.weight": missing/,
    );
  });

  it("truncated safetensors", () => {
    withDir((d) => {
      const buf = readFileSync(join(d, "model.safetensors"));
      writeFileSync(join(d, "model.safetensors"), buf.subarray(0, buf.length - 100));
    }, /model\.safetensors.*(truncated|lm_head|model\.)/);
  });
});
