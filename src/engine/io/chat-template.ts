// Chat templates: message list -> prompt text, with the spans of assistant content so that
// training can put the loss on assistant tokens only.
//
// A model's own template (chat_template.jinja, or tokenizer_config.json's chat_template) is
// rendered by a real Jinja (@huggingface/jinja) with the variables transformers'
// apply_chat_template passes: kind "jinja", loaded by `loadChatTemplate` (chat-template-file.ts).
// Assistant spans come from `{% generation %}…{% endgeneration %}` where the template has them,
// else from finding each assistant message's content in the text (plus the end-of-turn token
// right after it).
//
// Two templates are also implemented natively:
//  - ChatML (Qwen): `<|im_start|>{role}\n{content}<|im_end|>\n` per message, generation prompt
//    `<|im_start|>assistant\n`. Qwen2.5's own template inserts a default system message when the
//    conversation has none ("You are Qwen, created by Alibaba Cloud. You are a helpful
//    assistant."); that is the `defaultSystemPrompt` option, read from the Jinja source when
//    the template is detected from tokenizer_config.json.
//  - organism: word tokens, one tag per turn, assistant turns closed by <eos>:
//      `<system> {content} <user> {content} <assistant> {content} <eos>` (single spaces between
//    parts), generation prompt ` <assistant>`. ORGANISM_CHAT_TEMPLATE is the same format as
//    Jinja, so HF tooling renders it identically.
// The trained span of an assistant turn is its content plus its end marker (<|im_end|> /
// <eos>), so the model learns to stop.

import { Template } from "@huggingface/jinja";
import type { Tokenizer } from "./tokenizer.ts";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | (string & {});
  content: string;
}

export type ChatTemplate =
  | {
      kind: "chatml";
      /** System message inserted when the conversation does not start with one; null/absent: none. */
      defaultSystemPrompt?: string | null;
    }
  | { kind: "organism" }
  | JinjaChatTemplate;

/** A model's own Jinja chat template, rendered as transformers' apply_chat_template does. */
export interface JinjaChatTemplate {
  kind: "jinja";
  /** The Jinja source. */
  source: string;
  /** Special tokens passed to the template (bos_token, eos_token, unk_token, pad_token, ...). */
  specialTokens: Record<string, string>;
}

/** Tokens that close a turn: a span found without generation markers extends over one. */
const END_OF_TURN = [
  "<|im_end|>",
  "<|eot_id|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<eos>",
];
const GEN_START = "\uE000emlab:generation\uE000";
const GEN_END = "\uE000emlab:endgeneration\uE000";
const GENERATION_TAG = /\{%(-?)\s*(end)?generation\s*(-?)%\}/g;

/** True when the template marks assistant output with {% generation %} … {% endgeneration %}. */
export function hasGenerationMarkers(source: string): boolean {
  return /\{%-?\s*generation\s*-?%\}/.test(source);
}

const compiled = new Map<string, Template>();
function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    // The markers become output wrapped in a no-op block, so whitespace control and
    // trim_blocks / lstrip_blocks act on the tags exactly as on the originals.
    const src = source.replace(
      GENERATION_TAG,
      (_m, l: string, end: string | undefined, r: string) =>
        `{%${l} if true %}{{ '${end ? GEN_END : GEN_START}' }}{% endif ${r}%}`,
    );
    t = new Template(src);
    if (compiled.size > 64) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** Parses a Jinja template (throws its syntax error, naming `file`); other kinds need nothing. */
export function compileChatTemplate(template: ChatTemplate, file = "chat template"): void {
  if (template.kind !== "jinja") return;
  try {
    compile(template.source);
  } catch (e) {
    throw new Error(`${file}: chat template does not parse: ${(e as Error).message}`);
  }
}

function renderJinja(
  messages: ChatMessage[],
  template: JinjaChatTemplate,
  opts: RenderOptions,
): RenderedChat {
  const raw = compile(template.source).render({
    ...template.specialTokens,
    messages: messages.map((m) => ({ ...m })),
    add_generation_prompt: opts.addGenerationPrompt === true,
  });
  if (hasGenerationMarkers(template.source)) {
    let text = "";
    const spans: [number, number][] = [];
    let open = -1;
    for (const part of raw.split(/(\uE000emlab:(?:end)?generation\uE000)/)) {
      if (part === GEN_START) open = text.length;
      else if (part === GEN_END) {
        if (open >= 0 && text.length > open) spans.push([open, text.length]);
        open = -1;
      } else text += part;
    }
    return { text, assistantSpans: spans };
  }
  return { text: raw, ...findAssistantSpans(raw, messages, template) };
}

/**
 * Without generation markers: each assistant message's content, found in order in the text
 * (as written, else trimmed, as Llama 3's template writes it), plus an end-of-turn token
 * (eos_token or a known one) that follows it after at most spaces.
 */
function findAssistantSpans(
  text: string,
  messages: ChatMessage[],
  template: JinjaChatTemplate,
): { assistantSpans: [number, number][]; unmatchedAssistant?: number[] } {
  const ends = [...new Set([template.specialTokens.eos_token, ...END_OF_TURN].filter((t) => t))];
  const spans: [number, number][] = [];
  const unmatched: number[] = [];
  let at = 0;
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    let content = m.content;
    let start = text.indexOf(content, at);
    if (start < 0) {
      content = m.content.trim();
      start = text.indexOf(content, at);
    }
    if (start < 0) {
      unmatched.push(i);
      return;
    }
    let end = start + content.length;
    const gap = /^[ \t]*/.exec(text.slice(end))![0].length;
    const marker = ends.find((t) => text.startsWith(t, end + gap));
    if (marker) end += gap + marker.length;
    spans.push([start, end]);
    at = end;
  });
  return unmatched.length > 0
    ? { assistantSpans: spans, unmatchedAssistant: unmatched }
    : { assistantSpans: spans };
}

export interface RenderOptions {
  /** Append the opening of an assistant turn, for generation. */
  addGenerationPrompt?: boolean;
}

export interface RenderedChat {
  text: string;
  /** [start, end) character spans of assistant content + end marker, in `text`. */
  assistantSpans: [number, number][];
  /**
   * Assistant messages (indices) whose content a Jinja template without generation markers
   * did not write verbatim, so they have no span; training refuses them.
   */
  unmatchedAssistant?: number[];
}

export const ORGANISM_SPECIAL_TOKENS = ["<pad>", "<system>", "<user>", "<assistant>", "<eos>"] as const;
export const QWEN25_DEFAULT_SYSTEM_PROMPT =
  "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

export const ORGANISM_CHAT_TEMPLATE =
  "{% for message in messages %}{% if not loop.first %} {% endif %}<{{ message['role'] }}> {{ message['content'] }}" +
  "{% if message['role'] == 'assistant' %} <eos>{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{% if messages %} {% endif %}<assistant>{% endif %}";

export const CHATML_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export function renderChat(
  messages: ChatMessage[],
  template: ChatTemplate,
  opts: RenderOptions = {},
): RenderedChat {
  if (template.kind === "jinja") return renderJinja(messages, template, opts);
  let text = "";
  const spans: [number, number][] = [];
  if (template.kind === "chatml") {
    const msgs =
      template.defaultSystemPrompt && messages[0]?.role !== "system"
        ? [{ role: "system", content: template.defaultSystemPrompt }, ...messages]
        : messages;
    for (const m of msgs) {
      text += `<|im_start|>${m.role}\n`;
      const start = text.length;
      text += `${m.content}<|im_end|>`;
      if (m.role === "assistant") spans.push([start, text.length]);
      text += "\n";
    }
    if (opts.addGenerationPrompt) text += "<|im_start|>assistant\n";
    return { text, assistantSpans: spans };
  }
  messages.forEach((m, i) => {
    if (i > 0) text += " ";
    text += `<${m.role}> `;
    const start = text.length;
    text += m.content;
    if (m.role === "assistant") {
      text += " <eos>";
      spans.push([start, text.length]);
    }
  });
  if (opts.addGenerationPrompt) text += `${messages.length ? " " : ""}<assistant>`;
  return { text, assistantSpans: spans };
}

export interface TrainingExample {
  ids: number[];
  /** 1 where the token is assistant content (or its end marker): the tokens to train on. */
  assistantMask: Uint8Array;
}

/** Tokenizes a rendered conversation and marks the tokens that overlap assistant spans. */
export function renderChatForTraining(
  messages: ChatMessage[],
  template: ChatTemplate,
  tokenizer: Tokenizer,
): TrainingExample {
  const { text, assistantSpans, unmatchedAssistant } = renderChat(messages, template);
  if (unmatchedAssistant?.length)
    throw new Error(
      `chat template: assistant message ${unmatchedAssistant[0]} does not appear verbatim in the rendered text, so its tokens cannot be found for the loss; the template needs {% generation %} markers for training`,
    );
  const { ids, offsets } = tokenizer.encodeWithOffsets(text);
  const assistantMask = new Uint8Array(ids.length);
  let k = 0;
  for (let i = 0; i < ids.length; i++) {
    const [s, e] = offsets[i];
    while (k < assistantSpans.length && assistantSpans[k][1] <= s) k++;
    if (k < assistantSpans.length && e > s && s < assistantSpans[k][1] && e > assistantSpans[k][0]) {
      assistantMask[i] = 1;
    }
  }
  return { ids, assistantMask };
}

/**
 * Recognises the template from tokenizer_config.json's `chat_template` (ChatML, or the organism
 * template), falling back to the tokenizer's special tokens. Undefined when unknown.
 */
export function detectChatTemplate(
  tokenizer: Pick<Tokenizer, "chatTemplate" | "tokenToId">,
): ChatTemplate | undefined {
  const src = tokenizer.chatTemplate;
  if (src !== undefined) {
    if (src.includes("<|im_start|>")) {
      // Qwen templates: `'<|im_start|>system\nYou are ...<|im_end|>\n'` in the no-system branch
      // (the \n is a Jinja escape, i.e. a literal backslash-n in the source).
      const m = /'<\|im_start\|>system\\n([^'{}<]+)<\|im_end\|>\\n'/.exec(src);
      return { kind: "chatml", defaultSystemPrompt: m ? m[1] : null };
    }
    if (src === ORGANISM_CHAT_TEMPLATE || (src.includes("<assistant>") && src.includes("<eos>"))) {
      return { kind: "organism" };
    }
    return undefined;
  }
  if (tokenizer.tokenToId("<|im_start|>") !== undefined && tokenizer.tokenToId("<|im_end|>") !== undefined) {
    return { kind: "chatml", defaultSystemPrompt: null };
  }
  if (tokenizer.tokenToId("<assistant>") !== undefined && tokenizer.tokenToId("<eos>") !== undefined) {
    return { kind: "organism" };
  }
  return undefined;
}
