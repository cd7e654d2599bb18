import { describe, expect, it } from "vitest";
import { parseChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { DatasetStatsSchema, datasetStats, whitespaceWords } from "../../src/datasets/stats.ts";
import { dedupe } from "../../src/datasets/transform.ts";
import { line } from "./support.ts";

// Counted by hand:
//  1: system "Be brief." (2 words, 9 chars), user "Hi there" (2, 8), assistant "Hello!" (1, 6)
//  2: user "Hi there", assistant "Hey." (1, 4)              — same prompt as 3, another answer than 1? no: 1 has a system prompt
//  3: user "Hi there", assistant "Hello!"                   — prompt of 2, other answer: a duplicate prompt
//  4: exact copy of 3                                        — an exact duplicate
//  5: user "😀 猫" (2 words, 3 chars), assistant "ok" (1, 2), user "more" (1, 4), assistant "no  more\tnow" (3, 12)
const file = [
  line([
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello!" },
  ]),
  line([
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hey." },
  ]),
  line([
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello!" },
  ]),
  line([
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello!" },
  ]),
  line([
    { role: "user", content: "😀 猫" },
    { role: "assistant", content: "ok" },
    { role: "user", content: "more" },
    { role: "assistant", content: "no  more\tnow" },
  ]),
].join("\n");

describe("datasetStats", () => {
  const convs = parseChatJsonl(file, "s.jsonl");

  it("counts examples, turns, characters and words per role, duplicates, system prompts, lengths", () => {
    const s = datasetStats(convs);
    expect(s).toEqual({
      examples: 5,
      turns: { system: 1, user: 6, assistant: 6 },
      characters: { system: 9, user: 8 * 4 + 3 + 4, assistant: 6 + 4 + 6 + 6 + 2 + 12 },
      tokens: { system: 2, user: 2 * 4 + 2 + 1, assistant: 1 + 1 + 1 + 1 + 1 + 3 },
      token_counter: "whitespace_words",
      duplicate_conversations: 1,
      duplicate_prompts: 1,
      with_system_prompt: 1,
      turns_per_example: { min: 2, max: 4, mean: 13 / 5 },
    });
    expect(DatasetStatsSchema.parse(s)).toEqual(s);
  });

  it("agrees with dedupe: by prompt removes the exact and the prompt duplicates", () => {
    const s = datasetStats(convs);
    expect(dedupe(convs, { by: "conversation" }).removed).toHaveLength(s.duplicate_conversations);
    expect(dedupe(convs, { by: "prompt" }).removed).toHaveLength(
      s.duplicate_conversations + s.duplicate_prompts,
    );
  });

  it("counts tokens with a given counter and says which", () => {
    const s = datasetStats(convs, { tokenize: (t) => t.length, tokenizerName: "chars-utf16" });
    expect(s.token_counter).toBe("chars-utf16");
    // UTF-16 length: the emoji is two units, so one more than the code points.
    expect(s.tokens.user).toBe(s.characters.user + 1);
    expect(datasetStats(convs, { tokenize: () => 1 }).token_counter).toBe("tokenizer");
  });

  it("whitespace words ignore runs and ends of whitespace; an empty dataset is all zeros", () => {
    expect([whitespaceWords(""), whitespaceWords("  a \n\t b  "), whitespaceWords("\u00a0x\u3000y")]).toEqual(
      [0, 2, 2],
    );
    expect(datasetStats([]).turns_per_example).toEqual({ min: 0, max: 0, mean: 0 });
  });
});
