// Chat templates: message list -> prompt text, with the spans of assistant content so that
// training can put the loss on assistant tokens only.
//
// Two templates are implemented natively (no Jinja interpreter):
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
  | { kind: "organism" };

export interface RenderOptions {
  /** Append the opening of an assistant turn, for generation. */
  addGenerationPrompt?: boolean;
}

export interface RenderedChat {
  text: string;
  /** [start, end) character spans of assistant content + end marker, in `text`. */
  assistantSpans: [number, number][];
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
  const { text, assistantSpans } = renderChat(messages, template);
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
