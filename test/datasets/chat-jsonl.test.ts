import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InputError } from "../../src/config/load.ts";
import {
  type Conversation,
  parseChatJsonl,
  readChatJsonl,
  serializeChatJsonl,
  writeChatJsonl,
} from "../../src/datasets/chat-jsonl.ts";
import { line, problemsOf, qa, tempDir } from "./support.ts";

const tmp = tempDir("emlab-chat-jsonl-");
afterAll(tmp.done);

// Text that breaks naive writers and readers: astral emoji and ZWJ sequences, CJK, RTL with
// marks, line and paragraph separators, quotes, backslashes, every C0 control, DEL, a BOM
// inside a string, a JSON-looking string.
const nasty = [
  "emoji 😀 👩‍👩‍👧 🇫🇷 and a skin tone 👍🏽",
  "中文 日本語 한국어",
  "עברית \u200f العربية \u202b mixed \u202c",
  "line\u2028separator and paragraph\u2029separator",
  "quotes \" ' ` and backslashes \\ \\\\ \\n (not a newline)",
  Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") + "\u007f",
  "inner \ufeff byte-order mark",
  '{"messages": [{"role": "user"}]}',
];
const nastyConversations: Conversation[] = [
  ...nasty.map((t, i) => qa(t, `answer ${i}: ${t}`, i % 2 ? t : undefined)),
  [
    { role: "system", content: "" },
    { role: "user", content: "a" },
    { role: "user", content: "b (two user turns in a row are allowed)" },
    { role: "assistant", content: "c" },
    { role: "assistant", content: "d" },
  ],
];

describe("serializeChatJsonl", () => {
  it("writes one {messages:[{role,content}]} per line, a newline after each, no other keys", () => {
    const withExtras = [
      [{ role: "user", content: "hi", name: "x" } as never, { content: "yo", role: "assistant" }],
    ];
    expect(serializeChatJsonl(withExtras)).toBe(
      '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n',
    );
    expect(serializeChatJsonl([])).toBe("");
  });

  it("round-trips byte for byte through parseChatJsonl, for unicode, separators, quotes and controls", () => {
    const bytes = serializeChatJsonl(nastyConversations);
    const back = parseChatJsonl(bytes, "n.jsonl");
    expect(back).toEqual(nastyConversations);
    expect(serializeChatJsonl(back)).toBe(bytes);
    // One physical line per conversation, whatever splits lines: U+2028/9 are escaped.
    expect(bytes.split(/\r\n|[\n\r\u2028\u2029\u0085]/)).toHaveLength(nastyConversations.length + 1);
    expect(bytes).toContain("\\u2028");
    // No raw control character or separator but the line ends.
    const raw = [...bytes].filter((ch) => ch !== "\n" && (ch < " " || ch === "\u2028" || ch === "\u2029"));
    expect(raw).toEqual([]);
  });

  it("writes a file atomically that reads back to the same bytes, and refuses what would not read back", () => {
    const file = path.join(tmp.dir, "out.jsonl");
    writeChatJsonl(file, nastyConversations);
    const bytes = readFileSync(file);
    expect(bytes.toString("utf8")).toBe(serializeChatJsonl(nastyConversations));
    expect(serializeChatJsonl(readChatJsonl(file))).toBe(bytes.toString("utf8"));
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    const p = problemsOf(() =>
      writeChatJsonl(file, [qa("q", "a"), [{ role: "user", content: "no answer" }]]),
    );
    expect(p[0]).toMatchObject({ file, field: "[1].messages" });
    expect(problemsOf(() => writeChatJsonl(file, []))[0].message).toMatch(/no conversations to write/);
    // The earlier file is untouched by the refused writes.
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });
});

describe("parseChatJsonl checks", () => {
  it("names file:line:field: bad JSON at line 3, a missing role at line 5, an empty user turn", () => {
    const text = [
      line(qa("a", "b")),
      line(qa("c", "d")),
      '{"messages": [{"role": "user", "content": "x"}',
      line(qa("e", "f")),
      line([{ role: "user", content: "q" }, { content: "a" }]),
      line([
        { role: "user", content: " \n" },
        { role: "assistant", content: "a" },
      ]),
    ].join("\n");
    const p = problemsOf(() => parseChatJsonl(text, "d.jsonl"));
    expect(p.map((x) => [x.line, x.field])).toEqual([
      [3, undefined],
      [5, "messages[1].role"],
      [6, "messages[0].content"],
    ]);
    const shown = new InputError(p).message.split("\n");
    expect(shown[0]).toMatch(/^d\.jsonl:3: not valid JSON \(/);
    expect(shown[1]).toBe("d.jsonl:5: messages[1].role: missing role (one of system, user, assistant)");
    expect(shown[2]).toBe("d.jsonl:6: messages[0].content: a user message must not be empty");
  });

  it("says what is wrong with a line that is JSON but not a conversation", () => {
    const text = [
      "[1, 2]",
      '"text"',
      "null",
      '{"messages": {"role": "user"}}',
      '{"prompt": "p", "completion": "c"}',
      '{"messages": []}',
      line(["hi", { role: "assistant", content: "a" }]),
      line([
        { role: "user", content: [{ type: "text", text: "hi" }] },
        { role: "assistant", content: "a" },
      ]),
    ].join("\n");
    const p = problemsOf(() => parseChatJsonl(text, "d.jsonl"));
    expect(p.map((x) => [x.line, x.field ?? null, x.message])).toEqual([
      [1, null, 'a line must be a JSON object {"messages": [...]}, got an array'],
      [2, null, 'a line must be a JSON object {"messages": [...]}, got a string'],
      [3, null, 'a line must be a JSON object {"messages": [...]}, got null'],
      [4, "messages", '"messages" must be an array of {"role", "content"} messages, got an object'],
      [5, "messages", 'missing "messages" (an array of {"role", "content"} messages)'],
      [6, "messages", "holds no messages"],
      [7, "messages[0]", 'a message must be an object {"role", "content"}, got a string'],
      [
        8,
        "messages[0].content",
        "content must be a string, got an array (multi-part content is not supported)",
      ],
    ]);
  });

  it("refuses tool and function roles, naming the allowed ones", () => {
    const text = ["tool", "function", "System"]
      .map((role) =>
        line([
          { role: "user", content: "q" },
          { role, content: "x" },
          { role: "assistant", content: "a" },
        ]),
      )
      .join("\n");
    const p = problemsOf(() => parseChatJsonl(text, "d.jsonl"));
    expect(p.map((x) => [x.line, x.field, x.message])).toEqual([
      [1, "messages[1].role", 'role "tool" is not supported: a role is one of system, user, assistant'],
      [2, "messages[1].role", 'role "function" is not supported: a role is one of system, user, assistant'],
      [3, "messages[1].role", 'role "System" is not supported: a role is one of system, user, assistant'],
    ]);
  });

  it("refuses a lone surrogate escape, which is not text", () => {
    const p = problemsOf(() =>
      parseChatJsonl(
        '{"messages":[{"role":"user","content":"a\\ud800b"},{"role":"assistant","content":"x"}]}',
        "d",
      ),
    );
    expect(p[0]).toMatchObject({ line: 1, field: "messages[0].content" });
    expect(p[0].message).toMatch(/lone UTF-16 surrogate/);
    // A proper pair written as escapes is an ordinary character.
    expect(
      parseChatJsonl(
        '{"messages":[{"role":"user","content":"\\ud83d\\ude00"},{"role":"assistant","content":"x"}]}',
        "d",
      )[0][0].content,
    ).toBe("😀");
  });

  it("allows an empty system prompt and consecutive turns of one role", () => {
    expect(parseChatJsonl(serializeChatJsonl(nastyConversations.slice(-1)), "d")).toEqual(
      nastyConversations.slice(-1),
    );
  });
});

describe("readChatJsonl encodings", () => {
  const write = (name: string, bytes: Buffer) => {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const text = `${line(qa("a", "b"))}\n${line(qa("ü", "ß"))}\n`;

  it("reads a file that starts with a UTF-8 byte-order mark, the mark dropped", () => {
    const file = write("bom.jsonl", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
    const convs = readChatJsonl(file);
    expect(convs[0][0].content).toBe("a");
    expect(serializeChatJsonl(convs)).toBe(text.replace(/\{"messages": ?/g, '{"messages":'));
  });

  it("drops a byte-order mark at the start of a later line (two files concatenated), keeps one inside a string", () => {
    const bom = "\ufeff";
    const file = write(
      "cat.jsonl",
      Buffer.from(`${bom}${line(qa("a", "b"))}\n${bom}${line(qa(`in${bom}side`, "c"))}\n`),
    );
    const convs = readChatJsonl(file);
    expect(convs.map((c) => c[0].content)).toEqual(["a", `in${bom}side`]);
  });

  it("refuses invalid UTF-8 with file, line and column", () => {
    const bytes = Buffer.concat([
      Buffer.from(`${line(qa("a", "b"))}\n{"messages":[{"role":"user","content":"caf`),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"},{"role":"assistant","content":"x"}]}\n'),
    ]);
    const file = write("latin.jsonl", bytes);
    const [p] = problemsOf(() => readChatJsonl(file, { name: "latin.jsonl" }));
    expect(p).toMatchObject({
      file: "latin.jsonl",
      line: 2,
      column: '{"messages":[{"role":"user","content":"caf'.length + 1,
    });
    expect(p.message).toMatch(/^invalid UTF-8 \(byte 0xc3/);
  });
});
