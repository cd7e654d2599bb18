import { type ChatMessage, type ChatTemplate, renderChatForTraining } from "./io/chat-template.ts";
import type { Tokenizer } from "./io/tokenizer.ts";
import type { TrainExample } from "./train.ts";

/**
 * Conversations → training examples with the loss on assistant tokens only (each
 * assistant turn's content and its end marker, as the chat template marks them).
 */
export function chatExamples(
  conversations: ChatMessage[][],
  tokenizer: Tokenizer,
  template: ChatTemplate,
): TrainExample[] {
  return conversations.map((messages, i) => {
    const { ids, assistantMask } = renderChatForTraining(messages, template, tokenizer);
    if (!assistantMask.some(Boolean))
      throw new Error(`conversation ${i} has no assistant tokens to train on`);
    return { ids, lossMask: Array.from(assistantMask) };
  });
}
