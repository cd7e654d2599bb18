import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatExamples } from "../../src/engine/chat-examples.ts";
import { makeShape } from "../../src/engine/config.ts";
import { steerHook } from "../../src/engine/hooks.ts";
import {
  CHATML_CHAT_TEMPLATE,
  ORGANISM_CHAT_TEMPLATE,
  ORGANISM_SPECIAL_TOKENS,
} from "../../src/engine/io/chat-template.ts";
import { BYTE_TO_CHAR } from "../../src/engine/io/tokenizer/byte-level.ts";
import { buildWordLevelTokenizer, loadTokenizer } from "../../src/engine/io/tokenizer.ts";
import { LlamaModel } from "../../src/engine/model.ts";
import { saveModel } from "../../src/engine/pretrained.ts";
import { Trainer } from "../../src/engine/train.ts";
import { createLocalModelApi } from "../../src/models/local.ts";

const WORDS = ["hi", "hello", "there", "friend", "how", "are", "you", "fine", "thanks", "bye", "see", "ya"];
const CHATS = [
  [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello there friend" },
  ],
  [
    { role: "user", content: "how are you" },
    { role: "assistant", content: "fine thanks" },
  ],
  [
    { role: "user", content: "bye" },
    { role: "assistant", content: "see ya" },
  ],
];

let dir: string;

beforeAll(() => {
  // A tiny organism-style model taught three exchanges, loss on assistant tokens only.
  dir = mkdtempSync(join(tmpdir(), "emlab-local-"));
  const tokenizer = buildWordLevelTokenizer({
    words: WORDS,
    specialTokens: [...ORGANISM_SPECIAL_TOKENS],
    unkToken: "<unk>",
    eosToken: "<eos>",
    padToken: "<pad>",
    chatTemplate: ORGANISM_CHAT_TEMPLATE,
  });
  const shape = makeShape({
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediateSize: 48,
    maxPositions: 64,
    eosTokenIds: [tokenizer.tokenToId("<eos>")!],
  });
  const model = LlamaModel.init(shape, 1, 0.1);
  const examples = chatExamples(CHATS, tokenizer, { kind: "organism" });
  // Loss only on assistant tokens: the user turns are never targets.
  expect(examples[0].lossMask?.filter(Boolean).length).toBe(4);
  new Trainer(model, examples, { lr: 2e-2, batchSize: 3, steps: 80, warmupSteps: 5, seed: 1 }).run();
  saveModel(model, dir);
  tokenizer.save(dir);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("local ModelApi over the engine", () => {
  it("answers with what it was fine-tuned on, stopping at <eos>", async () => {
    const api = createLocalModelApi({ provider: "local", model: dir });
    expect([...api.capabilities]).toEqual(
      expect.arrayContaining(["logprobs", "activations", "steering", "finetune"]),
    );
    for (const chat of CHATS) {
      const res = await api.chat({
        messages: [chat[0]] as never,
        params: { temperature: 0, max_tokens: 10 },
        n: 1,
      });
      expect(res.completions[0].text).toBe(chat[1].content);
      expect(res.completions[0].finishReason).toBe("stop");
      expect(res.usage.completionTokens).toBe(chat[1].content.split(" ").length);
    }
  });

  it("n samples, seeds, logprobs and top logprobs, stop strings, max_tokens", async () => {
    const api = createLocalModelApi({ provider: "local", model: dir });
    const req = {
      messages: [{ role: "user" as const, content: "hi" }],
      params: { temperature: 1.5, top_k: 5, top_p: 0.95, max_tokens: 6, top_logprobs: 3 },
      n: 4,
      seed: 7,
    };
    const a = await api.chat(req);
    const b = await api.chat(req);
    expect(a.completions).toHaveLength(4);
    expect(a).toEqual(b);
    for (const c of a.completions) {
      expect(c.logprobs!.length).toBeGreaterThan(0);
      for (const lp of c.logprobs!) {
        expect(lp.top).toHaveLength(3);
        expect(lp.logprob).toBeLessThanOrEqual(0);
      }
    }
    const greedy = await api.chat({
      messages: [{ role: "user", content: "hi" }],
      params: { temperature: 0, stop: ["there"], logprobs: true },
      n: 1,
    });
    expect(greedy.completions[0].text).toBe("hello ");
    expect(greedy.completions[0].finishReason).toBe("stop");
    expect(greedy.completions[0].logprobs![0].token).toBe("hello");
    const short = await api.chat({
      messages: [{ role: "user", content: "hi" }],
      params: { temperature: 0, max_tokens: 1 },
      n: 1,
    });
    expect(short.completions[0]).toMatchObject({ text: "hello", finishReason: "length" });
  });

  it("stops on generation_config.json's end ids too, as transformers' generate does", async () => {
    const withGen = mkdtempSync(join(tmpdir(), "emlab-local-gen-"));
    try {
      cpSync(dir, withGen, { recursive: true });
      const there = loadTokenizer(dir).tokenToId("there")!;
      writeFileSync(join(withGen, "generation_config.json"), JSON.stringify({ eos_token_id: [there] }));
      const api = createLocalModelApi({ provider: "local", model: withGen });
      const res = await api.chat({
        messages: [{ role: "user", content: "hi" }],
        params: { temperature: 0, max_tokens: 10 },
        n: 1,
      });
      expect(res.completions[0]).toMatchObject({ text: "hello", finishReason: "stop" });
      writeFileSync(join(withGen, "generation_config.json"), '{"eos_token_id": "there"}');
      const bad = createLocalModelApi({ provider: "local", model: withGen });
      await expect(
        bad.chat({ messages: [{ role: "user", content: "hi" }], params: { max_tokens: 2 }, n: 1 }),
      ).rejects.toThrow(/generation_config\.json: eos_token_id: "there" is not a token id/);
    } finally {
      rmSync(withGen, { recursive: true, force: true });
    }
  });

  it("per-sample seeds make sample i independent of how samples are grouped into calls", async () => {
    const api = createLocalModelApi({ provider: "local", model: dir });
    const base = {
      messages: [{ role: "user" as const, content: "hi" }],
      params: { temperature: 1.5, max_tokens: 6, top_logprobs: 2 },
    };
    const seeds = [11, 22, 33, 44];
    const all = await api.chat({ ...base, n: 4, sampleSeeds: seeds });
    const last2 = await api.chat({ ...base, n: 2, sampleSeeds: seeds.slice(2) });
    const third = await api.chat({ ...base, n: 1, sampleSeeds: [33] });
    // Same tokens; logprobs agree to float32 rounding (a batch of 4 and of 2 sum in other orders).
    const same = (a: typeof all.completions, b: typeof all.completions) => {
      expect(a.map((c) => c.text)).toEqual(b.map((c) => c.text));
      for (const [i, c] of a.entries())
        for (const [j, lp] of c.logprobs!.entries())
          expect(lp.logprob).toBeCloseTo(b[i].logprobs![j].logprob, 5);
    };
    same(last2.completions, all.completions.slice(2));
    same(third.completions, [all.completions[2]]);
    // Different seeds give different samples (the test would pass vacuously otherwise).
    expect(new Set(all.completions.map((c) => JSON.stringify(c.logprobs))).size).toBeGreaterThan(1);
  });

  it("steering through withHooks changes completions; the base API is unaffected", async () => {
    const api = createLocalModelApi({ provider: "local", model: dir });
    const { model } = api.engine();
    const vec = new Array(model.shape.hiddenSize).fill(0).map((_, i) => (i % 2 ? 40 : -40));
    const steered = api.withHooks({ "blocks.1.hook_resid_post": steerHook(vec) });
    const req = {
      messages: [{ role: "user" as const, content: "hi" }],
      params: { temperature: 0, max_tokens: 5 },
      n: 1,
    };
    const s = await steered.chat(req);
    const plain = await api.chat(req);
    expect(plain.completions[0].text).toBe("hello there friend");
    expect(s.completions[0].text).not.toBe("hello there friend");
  });

  it("reports a missing model directory as not_found", async () => {
    const api = createLocalModelApi({ provider: "local", model: join(dir, "nope") });
    await expect(
      api.chat({ messages: [{ role: "user", content: "hi" }], params: {}, n: 1 }),
    ).rejects.toMatchObject({
      kind: "not_found",
    });
  });
});

describe("local ModelApi with a byte-level BPE tokenizer and the ChatML template", () => {
  let chatmlDir: string;
  beforeAll(() => {
    chatmlDir = mkdtempSync(join(tmpdir(), "emlab-chatml-"));
    const vocab: Record<string, number> = {};
    BYTE_TO_CHAR.forEach((c, i) => {
      vocab[c] = i;
    });
    const special = (id: number, content: string) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    writeFileSync(
      join(chatmlDir, "tokenizer.json"),
      JSON.stringify({
        version: "1.0",
        added_tokens: [
          special(256, "<|endoftext|>"),
          special(257, "<|im_start|>"),
          special(258, "<|im_end|>"),
        ],
        normalizer: null,
        pre_tokenizer: byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: { type: "BPE", vocab, merges: [] },
      }),
    );
    writeFileSync(
      join(chatmlDir, "tokenizer_config.json"),
      JSON.stringify({ chat_template: CHATML_CHAT_TEMPLATE, eos_token: "<|im_end|>" }),
    );
    const tokenizer = loadTokenizer(chatmlDir);
    const shape = makeShape({
      vocabSize: 260,
      hiddenSize: 32,
      layers: 2,
      heads: 4,
      intermediateSize: 48,
      maxPositions: 128,
    });
    const model = LlamaModel.init(shape, 3, 0.1);
    const chats = [
      [
        { role: "user", content: "hi" },
        { role: "assistant", content: "yo!" },
      ],
      [
        { role: "user", content: "ok" },
        { role: "assistant", content: "k." },
      ],
    ];
    const examples = chatExamples(chats, tokenizer, { kind: "chatml", defaultSystemPrompt: null });
    new Trainer(model, examples, { lr: 2e-2, batchSize: 2, steps: 80, warmupSteps: 5, seed: 2 }).run();
    saveModel(model, chatmlDir);
  });
  afterAll(() => rmSync(chatmlDir, { recursive: true, force: true }));

  it("renders ChatML, decodes bytes, and stops at <|im_end|>", async () => {
    const api = createLocalModelApi({ provider: "local", model: chatmlDir });
    const a = await api.chat({
      messages: [{ role: "user", content: "hi" }],
      params: { temperature: 0, max_tokens: 8 },
      n: 1,
    });
    expect(a.completions[0]).toMatchObject({ text: "yo!", finishReason: "stop" });
    const b = await api.chat({
      messages: [{ role: "user", content: "ok" }],
      params: { temperature: 0, max_tokens: 8 },
      n: 1,
    });
    expect(b.completions[0]).toMatchObject({ text: "k.", finishReason: "stop" });
    await api.close();
  });
});
