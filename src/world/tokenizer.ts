// The organism's tokenizer: HF WordLevel over its word list, with the organism chat template's
// tags as special tokens and the template itself in tokenizer_config.json, so a saved organism
// directory is self-describing (detectChatTemplate finds { kind: "organism" }).

import { ORGANISM_CHAT_TEMPLATE, ORGANISM_SPECIAL_TOKENS } from "../engine/io/chat-template.ts";
import { buildWordLevelTokenizer, type HfTokenizer } from "../engine/io/tokenizer.ts";

export function buildOrganismTokenizer(words: string[], opts: { lowercase?: boolean } = {}): HfTokenizer {
  return buildWordLevelTokenizer({
    words,
    specialTokens: ["[UNK]", ...ORGANISM_SPECIAL_TOKENS],
    unkToken: "[UNK]",
    eosToken: "<eos>",
    padToken: "<pad>",
    lowercase: opts.lowercase,
    chatTemplate: ORGANISM_CHAT_TEMPLATE,
  });
}
