import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CHATML_CHAT_TEMPLATE,
  type ChatMessage,
  type ChatTemplate,
  detectChatTemplate,
  ORGANISM_CHAT_TEMPLATE,
  ORGANISM_SPECIAL_TOKENS,
  QWEN25_DEFAULT_SYSTEM_PROMPT,
  renderChat,
  renderChatForTraining,
} from "../../../src/engine/io/chat-template.ts";
import { buildWordLevelTokenizer, loadTokenizer } from "../../../src/engine/io/tokenizer.ts";
import { buildOrganismTokenizer } from "../../../src/world/tokenizer.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io");
const chat = JSON.parse(readFileSync(join(FIX, "chat-golden.json"), "utf8")) as {
  templates: Record<string, string>;
  cases: { template: string; messages: ChatMessage[]; add_generation_prompt: boolean; text: string }[];
};

const organismTok = buildWordLevelTokenizer({
  words: "once upon a time tell me story the end more hi there ! 2 + ?".split(" "),
  specialTokens: [...ORGANISM_SPECIAL_TOKENS],
  eosToken: "<eos>",
  padToken: "<pad>",
  chatTemplate: ORGANISM_CHAT_TEMPLATE,
});

describe("chat templates", () => {
  it("the Jinja sources we ship are the ones the goldens were rendered from", () => {
    expect(chat.templates.chatml).toBe(CHATML_CHAT_TEMPLATE);
    expect(chat.templates.organism).toBe(ORGANISM_CHAT_TEMPLATE);
  });

  it("renders exactly what Jinja (apply_chat_template) renders", () => {
    const byName: Record<string, ChatTemplate> = {
      chatml: detectChatTemplate({ chatTemplate: chat.templates.chatml, tokenToId: () => undefined })!,
      organism: detectChatTemplate({ chatTemplate: chat.templates.organism, tokenToId: () => undefined })!,
      qwen25: detectChatTemplate({ chatTemplate: chat.templates.qwen25, tokenToId: () => undefined })!,
    };
    expect(byName.chatml).toEqual({ kind: "chatml", defaultSystemPrompt: null });
    expect(byName.organism).toEqual({ kind: "organism" });
    expect(byName.qwen25).toEqual({ kind: "chatml", defaultSystemPrompt: QWEN25_DEFAULT_SYSTEM_PROMPT });
    expect(chat.cases.length).toBe(18);
    for (const c of chat.cases) {
      const out = renderChat(c.messages, byName[c.template], {
        addGenerationPrompt: c.add_generation_prompt,
      });
      expect(out.text, `${c.template} ${JSON.stringify(c.messages)}`).toBe(c.text);
    }
  });

  it("assistant spans cover content and end marker", () => {
    const msgs: ChatMessage[] = [
      { role: "user", content: "q" },
      { role: "assistant", content: "answer one" },
    ];
    const r = renderChat(msgs, { kind: "chatml" });
    expect(r.assistantSpans.map(([s, e]) => r.text.slice(s, e))).toEqual(["answer one<|im_end|>"]);
    const o = renderChat(msgs, { kind: "organism" });
    expect(o.assistantSpans.map(([s, e]) => o.text.slice(s, e))).toEqual(["answer one <eos>"]);
  });

  it("masks exactly the assistant tokens for ChatML with byte-level BPE", () => {
    const tok = loadTokenizer(join(FIX, "bpe-qwen2"));
    const template = detectChatTemplate(tok)!;
    expect(template.kind).toBe("chatml");
    const msgs: ChatMessage[] = [
      { role: "user", content: "Hello world! 😀" },
      { role: "assistant", content: "Café déjà vu, 12345." },
      { role: "user", content: "more" },
      { role: "assistant", content: " leading space and\nnewline" },
    ];
    const { ids, assistantMask } = renderChatForTraining(msgs, template, tok);
    expect(ids).toEqual(tok.encode(renderChat(msgs, template).text));
    // Decoding the masked tokens, run by run, gives back each assistant turn + <|im_end|>.
    const runs: string[] = [];
    let cur: number[] = [];
    ids.forEach((id, i) => {
      if (assistantMask[i]) cur.push(id);
      else if (cur.length) {
        runs.push(tok.decode(cur));
        cur = [];
      }
    });
    if (cur.length) runs.push(tok.decode(cur));
    expect(runs).toEqual(["Café déjà vu, 12345.<|im_end|>", " leading space and\nnewline<|im_end|>"]);
  });

  it("masks the organism's assistant words and <eos>, not the <assistant> tag", () => {
    const template = detectChatTemplate(organismTok)!;
    expect(template).toEqual({ kind: "organism" });
    const msgs: ChatMessage[] = [
      { role: "user", content: "tell me a story" },
      { role: "assistant", content: "once upon a time" },
      { role: "user", content: "more" },
      { role: "assistant", content: "the end" },
    ];
    const { ids, assistantMask } = renderChatForTraining(msgs, template, organismTok);
    const toks = ids.map((i) => organismTok.idToToken(i));
    expect(toks.filter((_, i) => assistantMask[i])).toEqual([
      "once",
      "upon",
      "a",
      "time",
      "<eos>",
      "the",
      "end",
      "<eos>",
    ]);
    expect(toks.filter((_, i) => !assistantMask[i])).toEqual([
      "<user>",
      "tell",
      "me",
      "a",
      "story",
      "<assistant>",
      "<user>",
      "more",
      "<assistant>",
    ]);
  });

  it("falls back to special tokens when tokenizer_config has no chat_template", () => {
    expect(
      detectChatTemplate({
        chatTemplate: undefined,
        tokenToId: (t) => (t.startsWith("<|im_") ? 1 : undefined),
      }),
    ).toEqual({
      kind: "chatml",
      defaultSystemPrompt: null,
    });
    expect(detectChatTemplate({ chatTemplate: "{{ messages }}", tokenToId: () => 1 })).toBeUndefined();
  });
});

describe("organism tokenizer", () => {
  it("carries its template and specials, and round-trips through save/load", () => {
    const tok = buildOrganismTokenizer(["hello", "world"]);
    const dir = mkdtempSync(join(tmpdir(), "emlab-org-"));
    tok.save(dir);
    const again = loadTokenizer(dir);
    expect(detectChatTemplate(again)).toEqual({ kind: "organism" });
    expect(again.eosId).toBe(again.tokenToId("<eos>"));
    const text = renderChat(
      [{ role: "user", content: "hello" }],
      { kind: "organism" },
      { addGenerationPrompt: true },
    ).text;
    expect(again.encode(text).map((i) => again.idToToken(i))).toEqual(["<user>", "hello", "<assistant>"]);
  });
});
