/**
 * Chat JSONL, the fine-tuning format of OpenAI, Together and most trainers: one
 * `{"messages": [{"role", "content"}, ...]}` object a line. Extra keys (a message's `name`
 * or `weight`, a line's `tools`) are dropped rather than refused, so provider files load as
 * they are; what training needs is checked, and every problem names file:line and field.
 */
import { z } from "zod";
import { fieldName, InputError, type InputProblem } from "../config/load.ts";
import { readTextFile } from "../config/text-file.ts";
import type { ChatMessage } from "../engine/io/chat-template.ts";

export const ChatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});

export const ConversationSchema = z
  .object({ messages: z.array(ChatMessageSchema).min(1) })
  .refine((c) => c.messages.some((m) => m.role === "assistant"), {
    path: ["messages"],
    message: "needs at least one assistant message (the tokens trained on)",
  })
  .superRefine((c, ctx) => {
    // An assistant turn is what training learns: an empty one teaches nothing but to stop.
    // System and user turns may be empty (an empty system prompt is a common export).
    c.messages.forEach((m, i) => {
      if (m.role === "assistant" && m.content.trim() === "")
        ctx.addIssue({
          code: "custom",
          path: ["messages", i, "content"],
          message: "an assistant message must not be empty (its tokens are what training learns)",
        });
    });
  });

/** A dataset as training sees it: conversations, in file order. */
export type Conversation = ChatMessage[];

// Past this many problems the rest of the file is probably the same mistake.
const MAX_PROBLEMS = 20;

/** Checks one parsed conversation; problems are located at `file:line`. */
export function conversationProblems(value: unknown, file: string, line?: number): InputProblem[] {
  const r = ConversationSchema.safeParse(value);
  if (r.success) return [];
  return r.error.issues.map((issue) => ({
    file,
    line,
    field: fieldName(issue.path) || undefined,
    message: issue.message,
  }));
}

/**
 * Parses chat JSONL text. Blank lines are skipped; `limit` keeps the first N conversations
 * (every line is still checked: a bad file is refused whatever the limit).
 */
export function parseChatJsonl(text: string, file: string, opts: { limit?: number } = {}): Conversation[] {
  const out: Conversation[] = [];
  const problems: InputProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && problems.length < MAX_PROBLEMS; i++) {
    const raw = lines[i].trim();
    if (raw === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      problems.push({ file, line: i + 1, message: `not valid JSON (${(e as Error).message})` });
      continue;
    }
    const found = conversationProblems(value, file, i + 1);
    if (found.length > 0) {
      problems.push(...found);
      continue;
    }
    const { messages } = ConversationSchema.parse(value);
    out.push(messages.map((m) => ({ role: m.role, content: m.content })));
  }
  if (problems.length > 0) throw new InputError(problems.slice(0, MAX_PROBLEMS));
  if (out.length === 0) throw new InputError([{ file, message: "holds no conversations" }]);
  return opts.limit === undefined ? out : out.slice(0, opts.limit);
}

/** Reads and checks a chat JSONL file (see parseChatJsonl). */
export function readChatJsonl(file: string, opts: { limit?: number; name?: string } = {}): Conversation[] {
  const text = readTextFile(file, { shownAs: opts.name });
  return parseChatJsonl(text, opts.name ?? file, opts);
}
