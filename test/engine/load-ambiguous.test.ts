// Directories whose config and weights can be read two ways are read the way transformers 5
// reads them, with one `emlab:` warning on stderr: `tie_word_embeddings: true` with a stored
// lm_head.weight that differs from the embedding (not tied: the stored head is used, as
// `PreTrainedModel.tie_weights` does when both are in the checkpoint), and RoPE given both at
// the top level and in `rope_parameters` (`convert_rope_params_to_dict`: rope_scaling, else
// rope_parameters; their rope_theta before the top-level one).

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { noGrad } from "../../src/engine/autograd.ts";
import { shapeFromModelConfig } from "../../src/engine/config.ts";
import { convertHfDirToGguf, readGguf } from "../../src/engine/io/gguf.ts";
import { parseHfConfig } from "../../src/engine/io/hf-config.ts";
import { writeSafetensors } from "../../src/engine/io/safetensors.ts";
import { loadTokenizer } from "../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { loadModel, saveModel } from "../../src/engine/pretrained.ts";
import { tinyModel } from "../support/tiny-model.ts";

let stderr: MockInstance<typeof process.stderr.write>;
beforeEach(() => {
  stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
});
afterEach(() => stderr.mockRestore());
const warnings = () => stderr.mock.calls.map((c) => String(c[0])).filter((s) => s.startsWith("emlab: "));

function setConfig(dir: string, patch: Record<string, unknown>) {
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), ...patch }));
}

describe("tie_word_embeddings: true with a stored lm_head.weight", () => {
  it("a head that differs from the embedding is used, untied, with one warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-tie-"));
    const { model, tokenizer } = tinyModel(3); // untied: lm_head differs from embed_tokens
    saveModel(model, dir);
    tokenizer.save(dir);
    setConfig(dir, { tie_word_embeddings: true });
    const ids = [1, 5, 7, 2];
    const want = noGrad(() => model.forward([ids])).data;

    const loaded = loadModel(dir);
    expect(loaded.shape.tieWordEmbeddings).toBe(false);
    expect(Array.from(noGrad(() => loaded.forward([ids])).data)).toEqual(Array.from(want));
    loadModel(dir); // loaded again: still one warning
    const w = warnings();
    expect(w).toHaveLength(1);
    expect(w[0]).toContain(join(dir, "model.safetensors"));
    expect(w[0]).toMatch(/tie_word_embeddings: true, but lm_head\.weight is stored and differs .* NOT tied/);

    // Saving writes what was loaded: an untied config.
    const again = mkdtempSync(join(tmpdir(), "emlab-tie-saved-"));
    saveModel(loaded, again);
    expect(JSON.parse(readFileSync(join(again, "config.json"), "utf8")).tie_word_embeddings).toBe(false);
  });

  it("only the head stored: the embedding is tied to it (the symmetric case), no warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-tie-head-only-"));
    const { model, tokenizer } = tinyModel(6);
    saveModel(model, dir);
    tokenizer.save(dir);
    const head = model.params.get("lm_head.weight")!;
    const kept = new Map(
      [...model.params]
        .filter(([n]) => n !== "model.embed_tokens.weight")
        .map(([n, t]) => [n, { shape: [...t.shape], data: t.data }]),
    );
    writeSafetensors(join(dir, "model.safetensors"), kept);
    setConfig(dir, { tie_word_embeddings: true });
    const loaded = loadModel(dir);
    expect(loaded.shape.tieWordEmbeddings).toBe(true);
    expect(Array.from(loaded.params.get("model.embed_tokens.weight")!.data)).toEqual(Array.from(head.data));
    expect(loaded.params.has("lm_head.weight")).toBe(false);
    expect(warnings()).toEqual([]);
  });

  it("the GGUF conversion reads such a directory the same way: output.weight is the stored head", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-tie-gguf-"));
    const fixture = join(import.meta.dirname, "../fixtures/io/bpe-qwen2");
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(fixture, f), join(dir, f));
    const config = parseHfConfig({
      model_type: "qwen2",
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      vocab_size: loadTokenizer(dir).vocabSize,
    });
    const model = LlamaModel.init(shapeFromModelConfig(config), 5, 0.3);
    saveModel(model, dir);
    setConfig(dir, { tie_word_embeddings: true });
    const out = join(dir, "m.gguf");
    convertHfDirToGguf(dir, out);
    const g = readGguf(out);
    const head = g.tensors.find((t) => t.name === "output.weight");
    expect(head).toBeDefined();
    expect(Array.from(head!.data!)).toEqual(Array.from(model.params.get("lm_head.weight")!.data));
    expect(warnings()).toHaveLength(1);
  });

  it("a head equal to the embedding is the tied head stored anyway: tied, no warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "emlab-tie-same-"));
    const { model, tokenizer } = tinyModel(4);
    model.params.get("lm_head.weight")!.data.set(model.params.get("model.embed_tokens.weight")!.data);
    saveModel(model, dir);
    tokenizer.save(dir);
    setConfig(dir, { tie_word_embeddings: true });
    const loaded = loadModel(dir);
    expect(loaded.shape.tieWordEmbeddings).toBe(true);
    expect(loaded.params.has("lm_head.weight")).toBe(false);
    const ids = [3, 4, 5];
    expect(Array.from(noGrad(() => loaded.forward([ids])).data)).toEqual(
      Array.from(noGrad(() => model.forward([ids])).data),
    );
    expect(warnings()).toEqual([]);
    expect(loadTokenizer(dir).vocabSize).toBe(tokenizer.vocabSize);
  });
});

describe("RoPE at the top level and in rope_parameters (transformers 5)", () => {
  const BASE = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    vocab_size: 100,
  };
  const LLAMA3 = {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };

  it("rope_parameters' rope_theta wins over a different top-level rope_theta, with a warning", () => {
    const c = parseHfConfig(
      { ...BASE, rope_theta: 10000, rope_parameters: { rope_type: "default", rope_theta: 1e6 } },
      "a/config.json",
    );
    expect(c.ropeTheta).toBe(1e6);
    expect(c.ropeScaling).toBeUndefined();
    const w = warnings();
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(
      /^emlab: a\/config\.json: rope_theta 10000 and rope_parameters\.rope_theta 1000000 differ; .*rope_parameters\.rope_theta is used/,
    );
  });

  it("the top-level rope_theta fills in when rope_parameters has none; agreeing values warn nothing", () => {
    expect(
      parseHfConfig({ ...BASE, rope_theta: 5e5, rope_parameters: { rope_type: "default" } }).ropeTheta,
    ).toBe(5e5);
    const same = parseHfConfig({ ...BASE, rope_theta: 5e5, rope_parameters: { ...LLAMA3, rope_theta: 5e5 } });
    expect(same.ropeTheta).toBe(5e5);
    expect(same.ropeScaling).toMatchObject({ rope_type: "llama3", factor: 32 });
    expect(parseHfConfig({ ...BASE }).ropeTheta).toBe(10000);
    expect(warnings()).toEqual([]);
  });

  it("a legacy rope_scaling is used over rope_parameters (with a warning when they differ)", () => {
    const c = parseHfConfig(
      {
        ...BASE,
        rope_theta: 5e5,
        rope_scaling: { ...LLAMA3, factor: 8 },
        rope_parameters: { ...LLAMA3, rope_theta: 1e6 },
      },
      "b/config.json",
    );
    expect(c.ropeScaling).toMatchObject({ rope_type: "llama3", factor: 8 });
    // rope_parameters is ignored altogether, its rope_theta too.
    expect(c.ropeTheta).toBe(5e5);
    const w = warnings();
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(
      /b\/config\.json: both rope_scaling and rope_parameters are set and differ; .*rope_scaling is used/,
    );
  });

  it('a rope_type of "default" (or legacy type) is no scaling; a bad rope_theta names the field', () => {
    expect(parseHfConfig({ ...BASE, rope_scaling: { rope_type: "default" } }).ropeScaling).toBeUndefined();
    expect(parseHfConfig({ ...BASE, rope_scaling: { type: "llama3", factor: 8 } }).ropeScaling).toMatchObject(
      {
        type: "llama3",
      },
    );
    expect(() => parseHfConfig({ ...BASE, rope_parameters: { rope_theta: "big" } }, "c/config.json")).toThrow(
      /c\/config.json: field "rope_parameters.rope_theta": must be a positive number/,
    );
  });
});

// The same cases (and more) against transformers' own config classes, where .venv-ref has
// transformers 5 (configs need no torch).
const PYTHON = join(import.meta.dirname, "../../.venv-ref/bin/python");
let tfSkip = existsSync(PYTHON) ? "" : "no .venv-ref";
if (!tfSkip) {
  try {
    const v = execFileSync(PYTHON, ["-c", "import transformers; print(transformers.__version__)"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    if (!v.startsWith("5.")) tfSkip = `.venv-ref has transformers ${v}, not 5.x`;
  } catch {
    tfSkip = ".venv-ref has no transformers";
  }
}
if (tfSkip) console.warn(`[load-ambiguous] skipping the transformers RoPE comparison (${tfSkip})`);

describe.skipIf(tfSkip !== "")("RoPE fields resolved as transformers 5's config classes resolve them", () => {
  it("rope_theta and the scaling spec equal transformers' rope_parameters for llama, qwen2, mistral", () => {
    const base = {
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      vocab_size: 100,
      max_position_embeddings: 131072,
    };
    const l3 = {
      rope_type: "llama3",
      factor: 32.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 8192,
    };
    const variants: Record<string, unknown>[] = [
      {},
      { rope_theta: 5e5 },
      { rope_parameters: { rope_type: "default", rope_theta: 1e6 } },
      { rope_theta: 1e4, rope_parameters: { rope_type: "default", rope_theta: 1e6 } },
      { rope_theta: 5e5, rope_parameters: { rope_type: "default" } },
      { rope_theta: 5e5, rope_scaling: l3 },
      { rope_parameters: { ...l3, rope_theta: 5e5 } },
      { rope_theta: 5e5, rope_scaling: { ...l3, factor: 8.0 }, rope_parameters: { ...l3, rope_theta: 1e6 } },
      { rope_scaling: { ...l3, rope_theta: 2e5 }, rope_theta: 5e5 },
    ];
    const configs = ["llama", "qwen2", "mistral"].flatMap((model_type) =>
      variants.map((v) => ({ model_type, ...base, ...v })),
    );
    const script = `
import json, sys
from transformers import AutoConfig
out = []
for raw in json.load(sys.stdin):
    raw = dict(raw)
    c = AutoConfig.for_model(raw.pop("model_type"), **raw)
    out.append(c.rope_parameters)
print(json.dumps(out))
`;
    const theirs = JSON.parse(
      execFileSync(PYTHON, ["-c", script], {
        input: JSON.stringify(configs),
        encoding: "utf8",
        stdio: ["pipe", "pipe", "ignore"],
      }),
    ) as Record<string, unknown>[];
    expect(theirs).toHaveLength(configs.length);
    expect(theirs.filter((t) => t.rope_type === "llama3").length).toBe(12);
    configs.forEach((raw, i) => {
      const c = parseHfConfig(raw);
      const t = theirs[i];
      const what = JSON.stringify(raw);
      expect(c.ropeTheta, what).toBe(t.rope_theta);
      if (t.rope_type === "default") expect(c.ropeScaling, what).toBeUndefined();
      else {
        const { rope_theta: _a, ...ours } = c.ropeScaling ?? {};
        const { rope_theta: _b, ...want } = t;
        expect(ours, what).toEqual(want);
      }
    });
  });
});
