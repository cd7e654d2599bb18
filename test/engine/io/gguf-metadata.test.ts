// GGUF metadata checked against llama.cpp's own tools: the `gguf` Python package (gguf-py,
// what convert_hf_to_gguf.py writes with) reads an emlab export of tiny llama-, qwen2- and
// mistral-shaped model directories and finds every key convert_hf_to_gguf.py writes for that
// architecture, with the right value and type, and nothing else; and node-llama-cpp's Jinja chat
// wrapper, built from the template in the GGUF, renders a conversation to the same tokens as
// emlab's own rendering. Each part skips, saying why, without its tool (.venv-ref with gguf;
// node-llama-cpp's prebuilt binary).

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { shapeFromModelConfig } from "../../../src/engine/config.ts";
import { exportGguf } from "../../../src/engine/export.ts";
import { type ChatMessage, detectChatTemplate, renderChat } from "../../../src/engine/io/chat-template.ts";
import { modelChatTemplate, readGguf } from "../../../src/engine/io/gguf.ts";
import { type ModelConfig, parseHfConfig } from "../../../src/engine/io/hf-config.ts";
import { loadTokenizer, type Tokenizer } from "../../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../../src/engine/model.ts";
import { saveModel } from "../../../src/engine/pretrained.ts";

const ROOT = join(import.meta.dirname, "../../..");
const FIX = join(ROOT, "test/fixtures/io");
const PYTHON = join(ROOT, ".venv-ref/bin/python");

let pySkip = "";
if (!existsSync(PYTHON)) pySkip = "no .venv-ref";
else {
  try {
    execFileSync(PYTHON, ["-c", "import gguf"], { stdio: "pipe" });
  } catch {
    pySkip = ".venv-ref has no gguf package";
  }
}
if (pySkip)
  console.warn(
    `[gguf-metadata] skipping the gguf-py checks (${pySkip}; python3 -m venv .venv-ref && .venv-ref/bin/pip install -r scripts/reference/requirements.txt)`,
  );

const dir = mkdtempSync(join(tmpdir(), "emlab-gguf-meta-"));

/** Qwen2.5's template shape: a default system prompt when the conversation has none. */
const QWEN25_STYLE_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
  "{%- else %}{{- '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{%- endif %}" +
  "{%- for message in messages %}{%- if not (message['role'] == 'system' and loop.first) %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

interface Case {
  name: string;
  modelType: "llama" | "qwen2" | "mistral";
  fixture: string;
  over: Record<string, unknown>;
  /** Moves the template out of tokenizer_config.json into chat_template.jinja (the transformers 5 layout). */
  jinja?: string;
  tokenizerConfig?: Record<string, unknown>;
  dtype?: "F32" | "F16";
}

const CASES: Case[] = [
  {
    name: "llama",
    modelType: "llama",
    fixture: "bpe-llama3",
    over: { rope_theta: 500000, bos_token_id: 0 },
    jinja:
      "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}",
  },
  {
    name: "qwen2",
    modelType: "qwen2",
    fixture: "bpe-qwen2",
    over: { rope_theta: 1000000, tie_word_embeddings: true, extraVocab: 5 },
    dtype: "F16",
  },
  {
    name: "mistral",
    modelType: "mistral",
    fixture: "bpe-qwen2",
    over: { rope_theta: 10000, sliding_window: null },
    jinja: QWEN25_STYLE_TEMPLATE,
    tokenizerConfig: { add_prefix_space: false, add_eos_token: false, add_bos_token: false },
  },
];

interface Built {
  case: Case;
  dir: string;
  gguf: string;
  config: ModelConfig;
  tok: Tokenizer;
  template: string;
}

function build(c: Case): Built {
  const modelDir = join(dir, c.name);
  mkdirSync(modelDir, { recursive: true });
  const tokCfg = JSON.parse(readFileSync(join(FIX, c.fixture, "tokenizer_config.json"), "utf8"));
  copyFileSync(join(FIX, c.fixture, "tokenizer.json"), join(modelDir, "tokenizer.json"));
  if (c.jinja) {
    delete tokCfg.chat_template;
    writeFileSync(join(modelDir, "chat_template.jinja"), c.jinja);
  }
  Object.assign(tokCfg, c.tokenizerConfig ?? {});
  writeFileSync(join(modelDir, "tokenizer_config.json"), JSON.stringify(tokCfg, null, 2));
  const tok = loadTokenizer(modelDir);
  const { extraVocab, ...over } = c.over as { extraVocab?: number };
  const config = parseHfConfig({
    model_type: c.modelType,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: tok.vocabSize + (extraVocab ?? 0),
    rms_norm_eps: 1e-5,
    max_position_embeddings: 256,
    tie_word_embeddings: false,
    ...over,
  });
  saveModel(LlamaModel.init(shapeFromModelConfig(config), 7, 0.3), modelDir);
  const gguf = join(dir, `${c.name}.gguf`);
  exportGguf(modelDir, gguf, { dtype: c.dtype, name: `tiny ${c.name}` });
  const template = c.jinja ?? (tokCfg.chat_template as string);
  return { case: c, dir: modelDir, gguf, config, tok, template };
}

const built = CASES.map(build);

type Expected = Record<string, { type: string; value: unknown }>;

/** What convert_hf_to_gguf.py writes for each architecture (see the README's key table). */
function expectedMetadata(b: Built): Expected {
  const { config, tok } = b;
  const arch = b.case.modelType === "qwen2" ? "qwen2" : "llama";
  const u32 = (value: number) => ({ type: "UINT32", value });
  const f32 = (value: number) => ({ type: "FLOAT32", value: Math.fround(value) });
  const str = (value: string) => ({ type: "STRING", value });
  const bool = (value: boolean) => ({ type: "BOOL", value });
  const tokens: string[] = [];
  const types: number[] = [];
  const added = new Map(tok.addedTokens.map((t) => [t.id, t]));
  for (let id = 0; id < config.vocabSize; id++) {
    const t = tok.idToToken(id);
    tokens.push(t ?? `[PAD${id}]`);
    const a = added.get(id);
    types.push(t === undefined ? 5 : a ? (a.special || /^<\|.*\|>$/.test(t) ? 3 : 4) : 1);
  }
  const merges = (tok.tokenizerJson.model.merges as (string | string[])[]).map((m) =>
    Array.isArray(m) ? m.join(" ") : m,
  );
  const encoded = tok.encode("", { addSpecial: true });
  const bos = tok.bosId ?? config.bosTokenId;
  const eos = tok.eosId ?? config.eosTokenId;
  const cfg = tok.tokenizerConfig;
  const e: Expected = {
    "general.architecture": str(arch),
    "general.type": str("model"),
    "general.name": str(`tiny ${b.case.name}`),
    "general.quantization_version": u32(2),
    "general.alignment": u32(32),
    "general.file_type": u32(b.case.dtype === "F16" ? 1 : 0),
    [`${arch}.block_count`]: u32(config.numLayers),
    [`${arch}.context_length`]: u32(config.maxPositionEmbeddings),
    [`${arch}.embedding_length`]: u32(config.hiddenSize),
    [`${arch}.feed_forward_length`]: u32(config.intermediateSize),
    [`${arch}.attention.head_count`]: u32(config.numHeads),
    [`${arch}.attention.head_count_kv`]: u32(config.numKvHeads),
    [`${arch}.rope.freq_base`]: f32(config.ropeTheta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(config.rmsNormEps),
    [`${arch}.attention.key_length`]: u32(config.headDim),
    [`${arch}.attention.value_length`]: u32(config.headDim),
    "tokenizer.ggml.model": str("gpt2"),
    "tokenizer.ggml.pre": str(b.case.fixture === "bpe-llama3" ? "llama-bpe" : "qwen2"),
    "tokenizer.ggml.tokens": { type: "ARRAY/STRING", value: tokens },
    "tokenizer.ggml.token_type": { type: "ARRAY/INT32", value: types },
    "tokenizer.ggml.merges": { type: "ARRAY/STRING", value: merges },
    "tokenizer.ggml.add_bos_token": bool(
      typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : bos !== undefined && encoded[0] === bos,
    ),
    "tokenizer.ggml.add_eos_token": bool(
      typeof cfg.add_eos_token === "boolean"
        ? cfg.add_eos_token
        : eos !== undefined && encoded.at(-1) === eos,
    ),
    "tokenizer.chat_template": str(b.template),
  };
  if (arch === "llama") {
    e["llama.vocab_size"] = u32(config.vocabSize);
    e["llama.rope.dimension_count"] = u32(config.headDim);
    if (typeof cfg.add_prefix_space === "boolean")
      e["tokenizer.ggml.add_space_prefix"] = bool(cfg.add_prefix_space);
  }
  if (bos !== undefined) e["tokenizer.ggml.bos_token_id"] = u32(bos);
  if (eos !== undefined) e["tokenizer.ggml.eos_token_id"] = u32(eos);
  if (tok.padId !== undefined) e["tokenizer.ggml.padding_token_id"] = u32(tok.padId);
  return e;
}

const READER = `
import json, sys
from math import prod
from gguf import GGUFReader
from gguf.utility import size_label
r = GGUFReader(sys.argv[1])
out = {}
for name, f in r.fields.items():
    t = [x.name for x in f.types]
    out[name] = {"type": "/".join(t), "value": f.contents()}
total = sum(int(prod(int(d) for d in t.shape)) for t in r.tensors)
print(json.dumps({"fields": out, "size_label": size_label(total, total, 0, 0),
  "tensors": sorted(t.name for t in r.tensors)}))
`;

describe.skipIf(pySkip !== "")("GGUF metadata as gguf-py reads it", () => {
  for (const b of built) {
    it(`${b.case.name}: every key convert_hf_to_gguf.py writes, with its value and type, and no other`, () => {
      const py = JSON.parse(execFileSync(PYTHON, ["-c", READER, b.gguf], { encoding: "utf8" })) as {
        fields: Record<string, { type: string; value: unknown }>;
        size_label: string;
        tensors: string[];
      };
      const expected = expectedMetadata(b);
      expected["general.size_label"] = { type: "STRING", value: py.size_label };
      const pseudo = ["GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"];
      expect(
        Object.keys(py.fields)
          .filter((k) => !pseudo.includes(k))
          .sort(),
      ).toEqual(Object.keys(expected).sort());
      for (const [key, want] of Object.entries(expected)) {
        expect(py.fields[key], key).toEqual(want);
      }
      // Tied embeddings: no output.weight, as the converter writes it.
      expect(py.tensors.includes("output.weight")).toBe(!b.config.tieWordEmbeddings);
      // emlab's own reader agrees with gguf-py on every value.
      const ours = readGguf(b.gguf).metadata;
      for (const [key, want] of Object.entries(expected)) expect(ours.get(key), key).toEqual(want.value);
    });
  }
});

describe("chat template source (transformers 5 rules)", () => {
  it("chat_template.jinja wins over tokenizer_config.json, with a warning when they differ", () => {
    const d = join(dir, "both");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ chat_template: "from config" }));
    expect(modelChatTemplate(d)).toBe("from config");
    writeFileSync(join(d, "chat_template.jinja"), "from jinja");
    const spy = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(modelChatTemplate(d)).toBe("from jinja");
      expect(modelChatTemplate(d)).toBe("from jinja");
      const warnings = spy.mock.calls
        .map((c) => String(c[0]))
        .filter((s) => s.includes("chat_template.jinja"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^emlab: .*both: chat_template\.jinja and tokenizer_config\.json's chat_template differ/,
      );
    } finally {
      spy.mockRestore();
    }
  });

  it("named templates: additional_chat_templates/*.jinja, or a list in tokenizer_config.json", () => {
    const d = join(dir, "named");
    mkdirSync(join(d, "additional_chat_templates"), { recursive: true });
    writeFileSync(join(d, "chat_template.jinja"), "main");
    writeFileSync(join(d, "additional_chat_templates", "tool-use.jinja"), "tools");
    expect(modelChatTemplate(d)).toEqual([
      { name: "default", template: "main" },
      { name: "tool-use", template: "tools" },
    ]);
    const b = built[1];
    const out = join(dir, "named.gguf");
    // The qwen2 directory's weights with these templates: gguf-py's add_chat_template layout.
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
      copyFileSync(join(b.dir, f), join(d, f));
    const { chat_template: _, ...tokCfg } = b.tok.tokenizerConfig;
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify(tokCfg));
    exportGguf(d, out);
    const md = readGguf(out).metadata;
    expect(md.get("tokenizer.chat_template")).toBe("main");
    expect(md.get("tokenizer.chat_template.tool_use")).toBe("tools");
    expect(md.get("tokenizer.chat_templates")).toEqual(["tool_use"]);
  });
});

type NodeLlamaCpp = typeof import("node-llama-cpp");
type Llama = Awaited<ReturnType<NodeLlamaCpp["getLlama"]>>;
let nlc: NodeLlamaCpp | undefined;
let llama: Llama | undefined;
try {
  nlc = await import("node-llama-cpp");
  llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error });
} catch (e) {
  console.warn(
    `[gguf-metadata] skipping the node-llama-cpp template checks (${(e as Error).message.split("\n")[0]})`,
  );
}
const disposers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const d of disposers) await d();
});

const CONVERSATIONS: ChatMessage[][] = [
  [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Hello world" },
  ],
  [{ role: "user", content: "What do you think of people?" }],
  [
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "Hello. How can I help?" },
    { role: "user", content: "Tell me about the world." },
  ],
];

describe.skipIf(!llama)("node-llama-cpp applies the exported chat template", () => {
  // The ChatML-family templates emlab renders natively: tokenizer_config.json's (qwen2) and a
  // chat_template.jinja with a default system prompt (mistral-shaped directory).
  for (const b of built.filter((x) => x.case.fixture === "bpe-qwen2")) {
    it(`${b.case.name}: JinjaTemplateChatWrapper from the GGUF's template renders what emlab renders`, async () => {
      const model = await llama!.loadModel({ modelPath: b.gguf });
      disposers.push(() => model.dispose());
      const fromGguf = model.fileInfo.metadata.tokenizer.chat_template;
      expect(fromGguf).toBe(b.template);
      const template = detectChatTemplate({ chatTemplate: fromGguf, tokenToId: (t) => b.tok.tokenToId(t) });
      expect(template?.kind).toBe("chatml");
      const wrapper = new nlc!.JinjaTemplateChatWrapper({ template: fromGguf!, tokenizer: model.tokenizer });
      for (const messages of CONVERSATIONS) {
        const chatHistory = [
          ...messages.map((m) =>
            m.role === "assistant"
              ? { type: "model" as const, response: [m.content] }
              : m.role === "system"
                ? { type: "system" as const, text: m.content }
                : { type: "user" as const, text: m.content },
          ),
          { type: "model" as const, response: [] },
        ];
        const { contextText } = wrapper.generateContextState({ chatHistory });
        const theirs = Array.from(contextText.tokenize(model.tokenizer));
        const ours = renderChat(messages, template!, { addGenerationPrompt: true }).text;
        expect(model.detokenize(theirs as never, true), JSON.stringify(messages)).toBe(ours);
        expect(theirs, JSON.stringify(messages)).toEqual(b.tok.encode(ours));
      }
    });
  }
});
