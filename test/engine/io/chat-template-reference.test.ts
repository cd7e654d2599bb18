// emlab's rendering of models' own chat templates against transformers' apply_chat_template:
// scripts/reference/chat_templates.py writes tokenizer directories (Qwen2, Qwen2.5, Llama 3,
// Mistral, Gemma, a ChatML template with {% generation %} markers; 5.x chat_template.jinja and
// older tokenizer_config.json layouts, and a list of named templates) and prints the text, ids,
// assistant masks and raised errors for 5 conversations x add_generation_prompt on/off; every one
// must come out the same here, token for token. Skips without the reference venv (.venv-ref).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ChatMessage,
  ORGANISM_CHAT_TEMPLATE,
  renderChat,
  renderChatForTraining,
} from "../../../src/engine/io/chat-template.ts";
import { ChatTemplateError, loadChatTemplate } from "../../../src/engine/io/chat-template-file.ts";
import { buildWordLevelTokenizer, loadTokenizer } from "../../../src/engine/io/tokenizer.ts";
import { refPython, skipWithoutRef } from "../../support/python-ref.ts";

const SCRIPT = join(import.meta.dirname, "../../../scripts/reference/chat_templates.py");

interface RefCase {
  family: string;
  layout: string;
  dir: string;
  conversation: number;
  add_generation_prompt: boolean;
  text?: string;
  ids?: number[];
  assistant_mask?: number[];
  error?: string;
}

/** The end-of-turn token each family closes an assistant turn with. */
const END: Record<string, string> = {
  qwen2: "<|im_end|>",
  qwen25: "<|im_end|>",
  llama3: "<|eot_id|>",
  mistral: "</s>",
  gemma: "<end_of_turn>",
  "chatml-generation": "<|im_end|>",
};

describe.skipIf(skipWithoutRef("chat-template-reference"))("chat templates against transformers", () => {
  let out: string;
  let ref: { transformers: string; conversations: ChatMessage[][]; cases: RefCase[] };
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), "emlab-chat-ref-"));
    const stdout = execFileSync(refPython!, [SCRIPT, out], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    ref = JSON.parse(stdout);
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("renders every conversation as apply_chat_template does, text and token ids", () => {
    let compared = 0;
    let errors = 0;
    const families = new Set<string>();
    for (const c of ref.cases) {
      const at = `${c.family}/${c.layout} conversation ${c.conversation} gen=${c.add_generation_prompt}`;
      const tok = loadTokenizer(c.dir);
      const { template, file } = loadChatTemplate(c.dir);
      expect(template.kind, at).toBe("jinja");
      expect(file.endsWith(c.layout === "jinja" ? "chat_template.jinja" : "tokenizer_config.json"), at).toBe(
        true,
      );
      const msgs = ref.conversations[c.conversation];
      const render = () => renderChat(msgs, template, { addGenerationPrompt: c.add_generation_prompt });
      if (c.error !== undefined) {
        expect(render, at).toThrow(c.error);
        errors++;
        continue;
      }
      const r = render();
      expect(r.text, at).toBe(c.text);
      expect(tok.encode(r.text), at).toEqual(c.ids);
      families.add(c.family);
      compared++;
    }
    expect(families.size).toBe(6);
    expect(compared + errors).toBe(130);
    console.log(
      `chat-template-reference: ${compared} renderings identical to transformers ${ref.transformers} (text and ids), ${errors} raise_exception messages identical`,
    );
  });

  it("masks the tokens transformers masks, from {% generation %} markers", () => {
    const withMask = ref.cases.filter((c) => c.assistant_mask && !c.add_generation_prompt);
    expect(withMask.length).toBe(10);
    for (const c of withMask) {
      const tok = loadTokenizer(c.dir);
      const { template } = loadChatTemplate(c.dir);
      const ex = renderChatForTraining(ref.conversations[c.conversation], template, tok);
      expect(ex.ids).toEqual(c.ids);
      expect([...ex.assistantMask], `${c.family}/${c.layout} ${c.conversation}`).toEqual(c.assistant_mask);
    }
  });

  it("without markers, masks each assistant message's content and its end-of-turn token", () => {
    let checked = 0;
    for (const c of ref.cases) {
      if (c.error !== undefined || c.add_generation_prompt || c.assistant_mask || c.layout !== "jinja")
        continue;
      const msgs = ref.conversations[c.conversation];
      const { template } = loadChatTemplate(c.dir);
      const r = renderChat(msgs, template);
      const want = msgs
        .filter((m) => m.role === "assistant")
        .map((m) => (c.text!.includes(m.content) ? m.content : m.content.trim()) + END[c.family]);
      expect(
        r.assistantSpans.map(([s, e]) => r.text.slice(s, e)),
        `${c.family} ${c.conversation}`,
      ).toEqual(want);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });
});

describe("chat template files", () => {
  const dir = mkdtempSync(join(tmpdir(), "emlab-chat-file-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const msgs: ChatMessage[] = [
    { role: "user", content: "hi there" },
    { role: "assistant", content: "the end" },
  ];

  it("the organism template keeps its native renderer, which Jinja renders identically", () => {
    const d = join(dir, "organism");
    mkdirSync(d);
    writeFileSync(
      join(d, "tokenizer_config.json"),
      JSON.stringify({ chat_template: ORGANISM_CHAT_TEMPLATE }),
    );
    const { template } = loadChatTemplate(d);
    expect(template).toEqual({ kind: "organism" });
    const jinja = { kind: "jinja" as const, source: ORGANISM_CHAT_TEMPLATE, specialTokens: {} };
    for (const conv of [msgs, msgs.slice(0, 1), [{ role: "system", content: "be kind" }, ...msgs], []])
      for (const addGenerationPrompt of [false, true]) {
        const a = renderChat(conv, template, { addGenerationPrompt });
        const b = renderChat(conv, jinja, { addGenerationPrompt });
        expect(b.text).toBe(a.text);
        expect(b.assistantSpans).toEqual(a.assistantSpans);
      }
  });

  it("a directory without a template is an error naming its files; a named .jinja file is used instead", () => {
    const d = join(dir, "none");
    mkdirSync(d);
    writeFileSync(join(d, "tokenizer.json"), "{}");
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ eos_token: "<eos>" }));
    expect(() => loadChatTemplate(d)).toThrow(ChatTemplateError);
    expect(() => loadChatTemplate(d)).toThrow(
      `${d}: no chat template: no chat_template.jinja, and tokenizer_config.json has no chat_template (the directory has tokenizer.json, tokenizer_config.json); name a .jinja file with the local provider's options.chat_template`,
    );
    const f = join(dir, "mine.jinja");
    writeFileSync(f, "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}");
    const loaded = loadChatTemplate(d, { file: f });
    expect(loaded.file).toBe(f);
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(renderChat(msgs, loaded.template).text).toBe("[user] hi there<eos>[assistant] the end<eos>");
    expect(() => loadChatTemplate(d, { file: join(dir, "missing.jinja") })).toThrow(
      /missing\.jinja: cannot read/,
    );
  });

  it("chat_template.jinja wins over tokenizer_config.json; a named list uses 'default'", () => {
    const d = join(dir, "both");
    mkdirSync(d);
    writeFileSync(
      join(d, "tokenizer_config.json"),
      JSON.stringify({
        chat_template: [
          { name: "tool_use", template: "tools" },
          { name: "default", template: "default" },
        ],
      }),
    );
    expect(renderChat(msgs, loadChatTemplate(d).template).text).toBe("default");
    writeFileSync(join(d, "chat_template.jinja"), "jinja file");
    expect(renderChat(msgs, loadChatTemplate(d).template).text).toBe("jinja file");
    const e = join(dir, "nodefault");
    mkdirSync(e);
    writeFileSync(
      join(e, "tokenizer_config.json"),
      JSON.stringify({ chat_template: [{ name: "x", template: "x" }] }),
    );
    expect(() => loadChatTemplate(e)).toThrow(/chat_template: a list of named templates without "default"/);
  });

  it("a template that rewrites assistant content cannot be trained on without generation markers", () => {
    const template = {
      kind: "jinja" as const,
      source: "{% for m in messages %}{{ m.content | upper }}{% endfor %}",
      specialTokens: {},
    };
    // Rendering a prompt is fine; finding the tokens to train on is not.
    expect(renderChat(msgs, template, { addGenerationPrompt: true }).text).toBe("HI THERETHE END");
    const tok = buildWordLevelTokenizer({ words: ["x"], specialTokens: ["<eos>"] });
    expect(() => renderChatForTraining(msgs, template, tok)).toThrow(
      /assistant message 1 does not appear verbatim/,
    );
  });
});
