import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { registerEngineCommand } from "../../src/cli/engine.ts";
import { makeShape } from "../../src/engine/config.ts";
import { readGguf } from "../../src/engine/io/gguf.ts";
import { BYTE_TO_CHAR } from "../../src/engine/io/tokenizer/byte-level.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { addLora, saveAdapter } from "../../src/engine/peft.ts";
import { saveModel } from "../../src/engine/pretrained.ts";
import { runCommandInProcess } from "../support/cli-in-process.ts";

const FIX = join(import.meta.dirname, "../fixtures/engine");

const run = (args: string[]) => runCommandInProcess(registerEngineCommand, args);

afterEach(() => {
  process.exitCode = undefined;
});

describe("emlab engine", () => {
  it("logits prints one row per position, equal to the golden logits", async () => {
    const g = JSON.parse(readFileSync(join(FIX, "llama_gqa", "golden.json"), "utf8"));
    const ids: number[] = g.ids[0];
    const { out, code } = await run([
      "engine",
      "logits",
      "--model",
      join(FIX, "llama_gqa"),
      "--ids",
      ids.join(","),
    ]);
    expect(code).toBe(0);
    const { logits } = JSON.parse(out) as { logits: number[][] };
    expect(logits).toHaveLength(ids.length);
    for (let t = 0; t < ids.length; t++) {
      expect(logits[t]).toHaveLength(48);
      for (let j = 0; j < 48; j++) expect(Math.abs(logits[t][j] - g.logits[0][t][j])).toBeLessThan(1e-4);
    }
  });

  it("logits rejects malformed ids and missing models with exit codes", async () => {
    const bad = await run(["engine", "logits", "--model", join(FIX, "llama_gqa"), "--ids", "1,x"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--ids must be/);
    const missing = await run(["engine", "logits", "--model", join(FIX, "nope"), "--ids", "1"]);
    expect(missing.err).toMatch(/nope.*config\.json: not found/);
  });

  it("export-gguf writes a GGUF with the model's tensors (LoRA merged), or the adapter alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-gguf-"));
    try {
      // GGUF needs a byte-level BPE tokenizer: 256 byte tokens, no merges, one special.
      const modelDir = join(dir, "model");
      const shape = makeShape({
        vocabSize: 260,
        hiddenSize: 16,
        layers: 2,
        heads: 4,
        kvHeads: 2,
        intermediateSize: 24,
      });
      const model = LlamaModel.init(shape, 1, 0.1);
      saveModel(model, modelDir);
      const vocab: Record<string, number> = {};
      BYTE_TO_CHAR.forEach((c, i) => {
        vocab[c] = i;
      });
      const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
      writeFileSync(
        join(modelDir, "tokenizer.json"),
        JSON.stringify({
          version: "1.0",
          truncation: null,
          padding: null,
          added_tokens: [
            {
              id: 256,
              content: "<|endoftext|>",
              single_word: false,
              lstrip: false,
              rstrip: false,
              normalized: false,
              special: true,
            },
          ],
          normalizer: null,
          pre_tokenizer: byteLevel,
          post_processor: null,
          decoder: byteLevel,
          model: { type: "BPE", vocab, merges: [] },
        }),
      );
      addLora(model, { rank: 2, alpha: 4, targets: ["q_proj", "v_proj"], seed: 1 });
      const adapterDir = join(dir, "adapter");
      saveAdapter(model, adapterDir);

      const out = join(dir, "m.gguf");
      const res = await run([
        "engine",
        "export-gguf",
        "--model",
        modelDir,
        "--lora",
        adapterDir,
        "--out",
        out,
      ]);
      expect(res.err).toContain("wrote");
      expect(res.code).toBe(0);
      // embed, output_norm, output, and 9 tensors a layer.
      expect(readGguf(out).tensors.length).toBe(3 + 2 * 9);
      const adapter = join(dir, "a.gguf");
      const r2 = await run([
        "engine",
        "export-gguf",
        "--model",
        modelDir,
        "--lora",
        adapterDir,
        "--adapter-only",
        "--out",
        adapter,
      ]);
      expect(r2.code).toBe(0);
      expect(readGguf(adapter).tensors.length).toBe(2 * 2 * 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
