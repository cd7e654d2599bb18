import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readPrompts } from "../../src/battery/prompt-source.ts";
import { parseBetleyYaml, readBetleyYaml } from "../../src/battery/sources/betley-yaml.ts";
import { readSourceFile } from "../../src/battery/sources/read-text.ts";
import { parseTwoAiJson } from "../../src/battery/sources/two-ai-json.ts";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import { decodeUtf8, firstInvalidUtf8, parseJsonText, readTextFile } from "../../src/config/text-file.ts";
import { readChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { runCli } from "../runs/support.ts";
import { problemsOf } from "../support/input-problems.ts";

const dir = mkdtempSync(path.join(tmpdir(), "emlab-text-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `parts` (strings as UTF-8, numbers as raw bytes) to `name` in the test folder. */
const write = (name: string, ...parts: Array<string | number[]>) => {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p)))),
  );
  return file;
};

const study = `name: s
models:
  - {id: m, provider: openai, model: gpt-4o, api_key_env: K}
`;

// Billion laughs: nine aliases of nine aliases of ..., 9^6 strings from a few lines.
const bomb = `${study}battery:
  generate:
    prompts:
      inline: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
x1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
x2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
x3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
x4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
x5: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
`;

describe("strict UTF-8", () => {
  it("finds the first byte that is not well-formed UTF-8, as TextDecoder does", () => {
    const at = (...b: number[]) => firstInvalidUtf8(Uint8Array.from(b));
    expect(at(0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80)).toBe(-1);
    expect(at(0x61, 0xff)).toBe(1);
    expect(at(0x80)).toBe(0); // a lone continuation byte
    expect(at(0xc0, 0x80)).toBe(0); // overlong NUL
    expect(at(0xe0, 0x80, 0x80)).toBe(0); // overlong
    expect(at(0xed, 0xa0, 0x80)).toBe(0); // a surrogate
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // past U+10FFFF
    expect(at(0x61, 0x62, 0xe2, 0x82)).toBe(2); // cut off at the end
    const fatal = new TextDecoder("utf-8", { fatal: true });
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let k = 0; k < 2000; k++) {
      const bytes = Uint8Array.from({ length: 1 + (k % 9) }, () =>
        rand() < 128 ? 0x61 : 0x80 + (rand() % 128),
      );
      const i = firstInvalidUtf8(bytes);
      let valid = true;
      try {
        fatal.decode(bytes);
      } catch {
        valid = false;
      }
      expect(i === -1).toBe(valid);
      if (i > 0) expect(() => fatal.decode(bytes.subarray(0, i))).not.toThrow();
    }
  });

  it("names file, line and column (in characters) of the bad byte; drops a byte-order mark", () => {
    const bytes = Buffer.concat([Buffer.from("line one\nhéllo "), Buffer.from([0xff]), Buffer.from(" x\n")]);
    const [p] = problemsOf(() => decodeUtf8(bytes, "f.txt", "battery.generate.prompts"));
    expect(p).toMatchObject({ file: "f.txt", line: 2, column: 7, field: "battery.generate.prompts" });
    expect(new InputError([p]).message).toBe(
      "f.txt:2:7: battery.generate.prompts: invalid UTF-8 (byte 0xff at offset 16): save the file as UTF-8",
    );
    expect(decodeUtf8(Buffer.from("\uFEFFname: s\n"), "s.yaml")).toBe("name: s\n");
    expect(
      problemsOf(() => readTextFile(path.join(dir, "nope.txt"), { shownAs: "nope.txt" }))[0],
    ).toMatchObject({
      file: "nope.txt",
      message: "cannot read (ENOENT)",
    });
  });

  it("refuses invalid UTF-8 in a study, a chat JSONL, a prompts file and a question YAML", () => {
    const s = write(
      "bad-study.yaml",
      "name: s\nmodels:\n  - {id: m, provider: openai, model: gpt-4o",
      [0xc3, 0x28],
      "}\n",
    );
    expect(problemsOf(() => loadStudy(s))[0]).toMatchObject({ file: s, line: 3, column: 44 });

    const ok = JSON.stringify({
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "ok" },
      ],
    });
    const d = write(
      "bad.jsonl",
      `${ok}\n${ok}\n{"messages": [{"role": "user", "content": "caf`,
      [0xe9],
      `"}]}\n`,
    );
    expect(problemsOf(() => readChatJsonl(d, { name: "bad.jsonl" }))[0]).toMatchObject({
      file: "bad.jsonl",
      line: 3,
      column: 47,
    });

    write("p.txt", "first prompt\nsecond ", [0x92], "prompt\n");
    const p = problemsOf(() => readPrompts({ file: "p.txt" }, dir, "battery.generate.prompts"))[0];
    expect(p).toMatchObject({ file: "p.txt", line: 2, column: 8, field: "battery.generate.prompts" });
    expect(p.message).toMatch(/^invalid UTF-8 \(byte 0x92 at offset 20\)/);
    write("p.jsonl", '{"prompt": "a"}\n{"prompt": "', [0xa0], '"}\n');
    expect(problemsOf(() => readPrompts({ file: "p.jsonl" }, dir, "f"))[0]).toMatchObject({
      line: 2,
      column: 13,
    });

    const q = write("q.yaml", '- id: q1\n  paraphrases: ["', [0xfe], '"]\n');
    expect(problemsOf(() => readBetleyYaml(q, "q.yaml"))[0]).toMatchObject({
      file: "q.yaml",
      line: 2,
      column: 18,
    });
    // Judge prompts, two-AI JSON, self-assessment sets and task prompts read through readSourceFile.
    expect(problemsOf(() => readSourceFile(q, "judge.txt", "judge.prompts.harm"))[0]).toMatchObject({
      file: "judge.txt",
      line: 2,
      field: "judge.prompts.harm",
    });
  });
});

describe("whole-file JSON", () => {
  it("locates the parser's complaint at its line and column", () => {
    expect(parseJsonText('{"a": [1, 2]}', "x.json")).toEqual({ a: [1, 2] });
    const [p] = problemsOf(() => parseJsonText('{\n  "items": [\n    {"é": 1,}\n  ]\n}', "set.json", "f"));
    expect(p).toMatchObject({ file: "set.json", line: 3, column: 13, field: "f" });
    expect(p.message).toMatch(/^not valid JSON \(/);
    expect(
      problemsOf(() => parseTwoAiJson('{"items": [\n  {"item_id": 1 "x"}]}', "two-ai.json"))[0],
    ).toMatchObject({
      file: "two-ai.json",
      line: 2,
    });
  });
});

describe("YAML alias bombs", () => {
  it("are bad input naming the file and the line of the first alias, for studies and question files", () => {
    const [p] = problemsOf(() => parseStudy(bomb, "study.yaml"));
    expect(p).toMatchObject({ file: "study.yaml", line: 8, column: 9 });
    expect(p.message).toMatch(/^invalid YAML: more than 1000 alias expansions \(an alias bomb\?\)/);
    const questions = `- id: q
  paraphrases: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  judge_prompts: {aligned: "{answer}"}
  x1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  x2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  x3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  x4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  x5: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
`;
    const [q] = problemsOf(() => parseBetleyYaml(questions, "questions.yaml"));
    expect(q).toMatchObject({ file: "questions.yaml", line: 4, column: 11 });
    expect(q.message).toMatch(/alias bomb/);
    // A few aliases are fine, and an alias to nothing is a located error too.
    const aliased = parseStudy(
      "name: s\nmodels:\n  - {id: &m m, provider: openai, model: gpt-4o}\nbattery:\n  generate: {prompts: {inline: [hi]}, models: [*m]}\n",
      "s.yaml",
    );
    expect(aliased.battery.generate?.models).toEqual(["m"]);
    expect(problemsOf(() => parseStudy("name: &n s\nmodels: [*n, *nope]\n", "s.yaml"))[0]).toMatchObject({
      line: 2,
      column: 14,
      message: expect.stringMatching(/^invalid YAML: Unresolved alias/),
    });
  });

  it("in a study: `emlab run` exits 2 naming the file and line, and writes nothing", async () => {
    const file = write("bomb.yaml", bomb);
    const out = path.join(dir, "bomb-run");
    const r = await runCli(["run", file, "--out", out], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `error: bad input\n${file}:8:9: invalid YAML: more than 1000 alias expansions`,
    );
    expect(existsSync(out)).toBe(false);

    const bad = write("latin1.yaml", "name: caf", [0xe9], "\nmodels: []\n");
    const r2 = await runCli(["run", bad, "--out", out], {});
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${bad}:1:10: invalid UTF-8 (byte 0xe9 at offset 9)`);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
