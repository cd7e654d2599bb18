/**
 * Chat JSONL, the fine-tuning format of OpenAI, Together and most trainers: one
 * `{"messages": [{"role", "content"}, ...]}` object a line. Extra keys (a message's `name`
 * or `weight`, a line's `tools`) are dropped rather than refused, so provider files load as
 * they are; what training needs is checked, and every problem names file:line and field.
 * What emlab writes is one canonical byte form (serializeChatJsonl), which reads back to the
 * same conversations and serialises to the same bytes again.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { fieldName, InputError, type InputProblem } from "../config/load.ts";
import { readTextFile } from "../config/text-file.ts";
import type { ChatMessage } from "../engine/io/chat-template.ts";

/** The roles a training conversation may hold; tool and function turns are not trained on. */
export const CHAT_ROLES = ["system", "user", "assistant"] as const;

const ROLE_LIST = CHAT_ROLES.join(", ");

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

// A lone UTF-16 surrogate (only a `\ud800`-style JSON escape makes one): not text, and not
// encodable as UTF-8 by a tokenizer or a provider's upload.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const ChatMessageSchema = z.object(
  {
    role: z.enum(CHAT_ROLES, {
      error: (iss) =>
        iss.input === undefined
          ? `missing role (one of ${ROLE_LIST})`
          : `role ${JSON.stringify(iss.input)} is not supported: a role is one of ${ROLE_LIST}`,
    }),
    content: z.string({
      error: (iss) =>
        iss.input === undefined
          ? "missing content (a string)"
          : `content must be a string, got ${typeOf(iss.input)} (multi-part content is not supported)`,
    }),
  },
  { error: (iss) => `a message must be an object {"role", "content"}, got ${typeOf(iss.input)}` },
);

export const ConversationSchema = z
  .object(
    {
      messages: z
        .array(ChatMessageSchema, {
          error: (iss) =>
            iss.input === undefined
              ? 'missing "messages" (an array of {"role", "content"} messages)'
              : `"messages" must be an array of {"role", "content"} messages, got ${typeOf(iss.input)}`,
        })
        .min(1, { error: "holds no messages" }),
    },
    {
      error: (iss) => `a line must be a JSON object {"messages": [...]}, got ${typeOf(iss.input)}`,
    },
  )
  // An empty list is "holds no messages" alone.
  .refine((c) => c.messages.length === 0 || c.messages.some((m) => m.role === "assistant"), {
    path: ["messages"],
    message: "needs at least one assistant message (the tokens trained on)",
  })
  .superRefine((c, ctx) => {
    // An assistant turn is what training learns: an empty one teaches nothing but to stop.
    // An empty user turn asks nothing (a broken export); a system prompt may be empty
    // (a common export).
    c.messages.forEach((m, i) => {
      const at = ["messages", i, "content"];
      if (m.role === "assistant" && m.content.trim() === "")
        ctx.addIssue({
          code: "custom",
          path: at,
          message: "an assistant message must not be empty (its tokens are what training learns)",
        });
      else if (m.role === "user" && m.content.trim() === "")
        ctx.addIssue({ code: "custom", path: at, message: "a user message must not be empty" });
      if (LONE_SURROGATE.test(m.content))
        ctx.addIssue({
          code: "custom",
          path: at,
          message: "holds a lone UTF-16 surrogate (a \\ud800-style escape): not valid Unicode text",
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
 * (every line is still checked: a bad file is refused whatever the limit). Whitespace around a
 * line is ignored, a byte-order mark included (what `cat a.jsonl b.jsonl` leaves where the
 * second file began); inside a string it is content and kept.
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

/**
 * The one byte form emlab writes: per conversation one `{"messages":[{"role","content"},...]}`
 * (keys in that order, no others, no spaces) and a "\n". U+2028 and U+2029 are written as
 * `\u2028` / `\u2029` escapes, since readers that split lines on every Unicode line break
 * (Python's str.splitlines) would otherwise cut a line in two; the value is the same JSON.
 */
export function serializeChatJsonl(conversations: readonly Conversation[]): string {
  let out = "";
  for (const c of conversations) {
    const messages = c.map((m) => ({ role: m.role, content: m.content }));
    out += `${JSON.stringify({ messages })
      .replace(/\u2028/g, "\\u2028")
      .replace(/\u2029/g, "\\u2029")}\n`;
  }
  return out;
}

/**
 * Writes conversations as canonical chat JSONL, atomically: a temporary file in the same folder,
 * then a rename, so a reader (or a crash) never sees half a file. What would not read back
 * (an invalid conversation, no conversations) is refused before anything is written.
 */
export function writeChatJsonl(file: string, conversations: readonly Conversation[]): void {
  const problems = conversations.flatMap((messages, k) =>
    conversationProblems({ messages }, file).map((p) => ({ ...p, field: `[${k}].${p.field ?? ""}` })),
  );
  if (problems.length > 0) throw new InputError(problems.slice(0, MAX_PROBLEMS));
  if (conversations.length === 0)
    throw new InputError([{ file, message: "no conversations to write (a chat JSONL must hold one)" }]);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, serializeChatJsonl(conversations));
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
