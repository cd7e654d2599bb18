// Training files as the fine-tuning APIs read them: JSONL, one example a line. OpenAI checks
// a file when its job is validated (chat format, at least `minExamples` examples); Together
// checks it when it is uploaded (conversational, instruction or general-text format, as its
// SDK's `check_file` and the upload endpoint do). Both count tokens the way the rest of the
// server does: whitespace-separated words, plus 3 per chat message.

import { isObject } from "./context.ts";

export interface TrainingStats {
  examples: number;
  /** Rough token count of one pass over the file. */
  tokens: number;
}

/** The first problem found, with the 1-based line it is on (null when not line-specific). */
export interface TrainingProblem {
  line: number | null;
  message: string;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

function lines(text: string): Array<{ line: number; raw: string }> {
  return text
    .split("\n")
    .map((raw, i) => ({ line: i + 1, raw }))
    .filter((l) => l.raw.trim() !== "");
}

const CHAT_ROLES = ["system", "user", "assistant", "tool", "developer"];

/** Check one `{messages: [...]}` example; returns its token count or a problem message. */
function chatExample(messages: unknown, where: string): number | string {
  if (!Array.isArray(messages) || messages.length === 0) {
    return `${where} 'messages' must be a non-empty list.`;
  }
  let tokens = 0;
  let assistant = false;
  for (const [i, m] of messages.entries()) {
    if (!isObject(m) || typeof m.role !== "string") return `${where} message ${i + 1} is missing a role.`;
    if (!CHAT_ROLES.includes(m.role)) return `${where} message ${i + 1} has an unknown role '${m.role}'.`;
    if (typeof m.content !== "string" && !(m.role === "assistant" && Array.isArray(m.tool_calls))) {
      return `${where} message ${i + 1} is missing a string 'content'.`;
    }
    if (m.role === "assistant") assistant = true;
    tokens += 3 + (typeof m.content === "string" ? words(m.content) : 0);
  }
  if (!assistant) return `${where} has no assistant message.`;
  return tokens;
}

/** OpenAI's check at the validating_files step (chat fine-tuning format). */
export function checkOpenAITrainingFile(
  text: string,
  minExamples: number,
): { stats: TrainingStats } | { problem: TrainingProblem } {
  let tokens = 0;
  const all = lines(text);
  for (const { line, raw } of all) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return { problem: { line, message: `Invalid file format. Line ${line} is not valid JSON.` } };
    }
    const where = `Invalid file format. Example ${line}`;
    if (!isObject(value)) return { problem: { line, message: `${where} is not a JSON object.` } };
    if (value.messages === undefined) {
      return { problem: { line, message: `${where} is missing the 'messages' key.` } };
    }
    const result = chatExample(value.messages, where);
    if (typeof result === "string") return { problem: { line, message: result } };
    tokens += result;
  }
  if (all.length < minExamples) {
    return {
      problem: {
        line: null,
        message: `Training file has ${all.length} example(s), but must have at least ${minExamples} examples`,
      },
    };
  }
  return { stats: { examples: all.length, tokens } };
}

const TOGETHER_FORMATS: Record<string, string[]> = {
  conversational: ["messages"],
  instruction: ["prompt", "completion"],
  general: ["text"],
};

/** Together's upload-time check of a fine-tune JSONL file (messages modelled on its SDK's). */
export function checkTogetherTrainingFile(
  text: string,
): { stats: TrainingStats } | { problem: TrainingProblem } {
  const all = lines(text);
  if (all.length === 0) return { problem: { line: null, message: "File is empty" } };
  let format: string | null = null;
  let tokens = 0;
  for (const { line, raw } of all) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return { problem: { line, message: `Error parsing json payload. Unexpected format on line ${line}.` } };
    }
    if (!isObject(value)) {
      return {
        problem: {
          line,
          message: `Error parsing file. Invalid format on line ${line} of the input file. Datasets must follow text, conversational, or instruction format.`,
        },
      };
    }
    const found = Object.entries(TOGETHER_FORMATS).find(([, cols]) => cols.every((c) => c in value));
    if (!found) {
      return {
        problem: {
          line,
          message: `Error parsing file. Could not detect a format for the line ${line} with the columns: ${JSON.stringify(Object.keys(value))}`,
        },
      };
    }
    const [name, cols] = found;
    if (format !== null && format !== name) {
      return {
        problem: {
          line,
          message: `Found multiple dataset formats in the input file. Got ${format} and ${name} on line ${line}.`,
        },
      };
    }
    format = name;
    const extra = Object.keys(value).find((k) => !cols.includes(k));
    if (extra !== undefined) {
      return { problem: { line, message: `Found extra column "${extra}" in the line ${line}.` } };
    }
    if (name === "conversational") {
      const result = chatExample(
        value.messages,
        `Invalid format on line ${line} of the input file. The example`,
      );
      if (typeof result === "string") return { problem: { line, message: result } };
      tokens += result;
    } else {
      for (const c of cols) {
        if (typeof value[c] !== "string") {
          return {
            problem: { line, message: `Invalid value type for "${c}" key on line ${line}. Expected string.` },
          };
        }
        tokens += words(value[c] as string);
      }
    }
  }
  return { stats: { examples: all.length, tokens } };
}

/** Non-blank lines of a JSONL file (Together reports it as LineCount). */
export function lineCount(text: string): number {
  return lines(text).length;
}
