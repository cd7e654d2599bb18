/**
 * What a chat dataset holds, counted: examples, turns, characters and tokens per role,
 * duplicates, system prompts, conversation lengths. Characters are Unicode code points (an
 * emoji is one), so counts do not depend on how a string is stored.
 */
import { z } from "zod";
import type { Conversation } from "./chat-jsonl.ts";
import { conversationKey, promptKey } from "./transform.ts";

const PerRoleSchema = z.object({
  system: z.number().int().nonnegative(),
  user: z.number().int().nonnegative(),
  assistant: z.number().int().nonnegative(),
});
export type PerRole = z.infer<typeof PerRoleSchema>;

export const DatasetStatsSchema = z.object({
  examples: z.number().int().nonnegative(),
  /** Messages per role, over the whole dataset. */
  turns: PerRoleSchema,
  /** Unicode code points of content per role. */
  characters: PerRoleSchema,
  /** Tokens of content per role, counted by `token_counter`. */
  tokens: PerRoleSchema,
  /** "whitespace_words" when no tokenizer was given, else the tokenizer's name. */
  token_counter: z.string(),
  /** Examples identical (every role and content) to an earlier one. */
  duplicate_conversations: z.number().int().nonnegative(),
  /**
   * Examples whose prompt (the system and user turns, in order) an earlier example has, with
   * different assistant turns: the same question answered two ways. Exact duplicates are not
   * counted again here, so dedupe by prompt removes duplicate_conversations + duplicate_prompts.
   */
  duplicate_prompts: z.number().int().nonnegative(),
  /** Examples with at least one system message. */
  with_system_prompt: z.number().int().nonnegative(),
  /** Messages per example. */
  turns_per_example: z.object({
    min: z.number().int().nonnegative(),
    max: z.number().int().nonnegative(),
    mean: z.number().nonnegative(),
  }),
});
export type DatasetStats = z.infer<typeof DatasetStatsSchema>;

export interface DatasetStatsOptions {
  /** Token count of a text (e.g. a model's tokenizer, no special tokens); default whitespace words. */
  tokenize?: (text: string) => number;
  /** What `tokenize` is, for `token_counter` (default "tokenizer"). */
  tokenizerName?: string;
}

/** Words separated by whitespace: a rough, tokenizer-free size. */
export function whitespaceWords(text: string): number {
  return text.match(/\S+/gu)?.length ?? 0;
}

function roleOf(role: string): keyof PerRole | undefined {
  return role === "system" || role === "user" || role === "assistant" ? role : undefined;
}

export function datasetStats(
  conversations: readonly Conversation[],
  opts: DatasetStatsOptions = {},
): DatasetStats {
  const count = opts.tokenize ?? whitespaceWords;
  const turns: PerRole = { system: 0, user: 0, assistant: 0 };
  const characters: PerRole = { system: 0, user: 0, assistant: 0 };
  const tokens: PerRole = { system: 0, user: 0, assistant: 0 };
  const seenConversations = new Set<string>();
  const seenPrompts = new Set<string>();
  let duplicateConversations = 0;
  let duplicatePrompts = 0;
  let withSystem = 0;
  let minTurns = Number.POSITIVE_INFINITY;
  let maxTurns = 0;
  let allTurns = 0;
  for (const c of conversations) {
    for (const m of c) {
      const role = roleOf(m.role);
      if (!role) continue;
      turns[role]++;
      characters[role] += [...m.content].length;
      tokens[role] += count(m.content);
    }
    if (c.some((m) => m.role === "system")) withSystem++;
    minTurns = Math.min(minTurns, c.length);
    maxTurns = Math.max(maxTurns, c.length);
    allTurns += c.length;
    const ck = conversationKey(c);
    const pk = promptKey(c);
    if (seenConversations.has(ck)) duplicateConversations++;
    else if (seenPrompts.has(pk)) duplicatePrompts++;
    seenConversations.add(ck);
    seenPrompts.add(pk);
  }
  const n = conversations.length;
  return DatasetStatsSchema.parse({
    examples: n,
    turns,
    characters,
    tokens,
    token_counter: opts.tokenize ? (opts.tokenizerName ?? "tokenizer") : "whitespace_words",
    duplicate_conversations: duplicateConversations,
    duplicate_prompts: duplicatePrompts,
    with_system_prompt: withSystem,
    turns_per_example: { min: n === 0 ? 0 : minTurns, max: maxTurns, mean: n === 0 ? 0 : allTurns / n },
  });
}
