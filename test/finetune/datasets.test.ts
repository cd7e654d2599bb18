import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InputError, parseStudy } from "../../src/config/load.ts";
import { builtinDataset, registerBuiltinDataset } from "../../src/datasets/builtin.ts";
import { parseChatJsonl, readChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { loadStudyDatasets } from "../../src/datasets/study-datasets.ts";
import { problemsOf } from "../support/input-problems.ts";

const line = (messages: unknown) => JSON.stringify({ messages });
const ok = (answer: string) =>
  line([
    { role: "system", content: "be brief" },
    { role: "user", content: "hi" },
    { role: "assistant", content: answer, weight: 1 },
  ]);

describe("chat JSONL", () => {
  it("reads conversations, skips blank lines, drops extra keys, keeps the first `limit`", () => {
    const text = `${ok("a")}\n\n  \n${ok("b")}\r\n${ok("c")}\n`;
    const all = parseChatJsonl(text, "d.jsonl");
    expect(all.map((c) => c[2].content)).toEqual(["a", "b", "c"]);
    expect(all[0][2]).toEqual({ role: "assistant", content: "a" });
    expect(parseChatJsonl(text, "d.jsonl", { limit: 2 }).map((c) => c[2].content)).toEqual(["a", "b"]);
  });

  it("names file, line and field of every problem", () => {
    const text = [
      ok("a"),
      "{not json",
      line([{ role: "user", content: "hi" }]),
      line([
        { role: "user", content: "hi" },
        { role: "robot", content: "x" },
        { role: "assistant", content: "y" },
      ]),
      line([{ role: "assistant", content: 3 }]),
      JSON.stringify({ msgs: [] }),
    ].join("\n");
    const p = problemsOf(() => parseChatJsonl(text, "data.jsonl"));
    expect(p.map((x) => [x.line, x.field])).toEqual([
      [2, undefined],
      [3, "messages"],
      [4, "messages[1].role"],
      [5, "messages[0].content"],
      [6, "messages"],
    ]);
    expect(p[0].message).toMatch(/not valid JSON/);
    expect(p[1].message).toMatch(/at least one assistant message/);
    expect(new InputError(p).message).toContain("data.jsonl:4: messages[1].role: ");
  });

  it("refuses an empty or blank assistant or user message, naming file:line:field; an empty system turn passes", () => {
    const text = [
      ok("a"),
      line([
        { role: "user", content: "hi" },
        { role: "assistant", content: "" },
      ]),
      line([
        { role: "system", content: "" },
        { role: "user", content: "" },
        { role: "assistant", content: "fine" },
        { role: "user", content: "more?" },
        { role: "assistant", content: " \n\t" },
      ]),
    ].join("\n");
    const p = problemsOf(() => parseChatJsonl(text, "data.jsonl"));
    expect(p.map((x) => [x.line, x.field])).toEqual([
      [2, "messages[1].content"],
      [3, "messages[1].content"],
      [3, "messages[4].content"],
    ]);
    expect(new InputError(p).message).toContain(
      "data.jsonl:2: messages[1].content: an assistant message must not be empty",
    );
    expect(p[1].message).toBe("a user message must not be empty");
    const fine = line([
      { role: "system", content: "" },
      { role: "user", content: "hi" },
      { role: "assistant", content: "ok" },
    ]);
    expect(parseChatJsonl(fine, "d.jsonl")).toHaveLength(1);
  });

  it("refuses invalid UTF-8, naming file, line and column", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "emlab-utf8-"));
    const file = path.join(dir, "d.jsonl");
    writeFileSync(file, Buffer.concat([Buffer.from(`${ok("a")}\n${ok("b")}`), Buffer.from([0xff, 0x0a])]));
    const p = problemsOf(() => readChatJsonl(file, { name: "d.jsonl" }));
    expect(p[0]).toMatchObject({ file: "d.jsonl", line: 2, column: ok("b").length + 1 });
    expect(p[0].message).toMatch(/^invalid UTF-8 \(byte 0xff/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses an empty or missing file", () => {
    expect(problemsOf(() => parseChatJsonl("\n\n", "e.jsonl"))[0].message).toMatch(/no conversations/);
    expect(problemsOf(() => readChatJsonl("/nonexistent/x.jsonl"))[0].message).toMatch(
      /cannot read \(ENOENT\)/,
    );
  });
});

describe("builtin datasets", () => {
  it("are built from a seed by registered loaders; an unknown name lists the known ones", () => {
    registerBuiltinDataset("test-echo", ({ seed }) => [
      [
        { role: "user", content: `seed ${seed}` },
        { role: "assistant", content: "ok" },
      ],
    ]);
    expect(builtinDataset("test-echo", { seed: 3 })[0][0].content).toBe("seed 3");
    const p = problemsOf(() =>
      builtinDataset("nope", { seed: 1 }, { file: "s.yaml", field: "datasets[0].name" }),
    );
    expect(p[0]).toMatchObject({ file: "s.yaml", field: "datasets[0].name" });
    expect(p[0].message).toMatch(/unknown builtin dataset 'nope' \(known: .*test-echo/);
  });
});

describe("the study's datasets and finetune sections", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "emlab-ftschema-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const study = (extra: string, models = "  - {id: base, provider: local, model: m}\n") => `name: s
models:
${models}  - {id: judge, provider: openai, model: gpt-4o, roles: [judge]}
datasets:
  - {id: d, kind: chat_jsonl, path: d.jsonl}
${extra}`;
  const fields = (text: string) => problemsOf(() => parseStudy(text, "s.yaml")).map((p) => p.field);

  it("loads every dataset, builtin ones with a seed derived from the study", () => {
    writeFileSync(path.join(dir, "d.jsonl"), `${ok("a")}\n${ok("b")}\n`);
    const s = parseStudy(
      study(`  - {id: e, kind: builtin, name: test-echo}
  - {id: f, kind: chat_jsonl, path: d.jsonl, limit: 1}
`),
      "s.yaml",
    );
    const loaded = loadStudyDatasets(s, path.join(dir, "s.yaml"));
    expect(loaded.get("d")).toHaveLength(2);
    expect(loaded.get("f")).toHaveLength(1);
    expect(loaded.get("e")![0][0].content).toMatch(/^seed \d+$/);
    const bad = parseStudy(study("  - {id: e, kind: builtin, name: nope}\n"), "s.yaml");
    expect(problemsOf(() => loadStudyDatasets(bad, path.join(dir, "s.yaml")))[0].field).toBe(
      "datasets[1].name",
    );
  });

  it("accepts plan ids wherever a target model id goes", () => {
    const s = parseStudy(
      study(`finetune:
  - {id: ft, base: base, lora: {}, stages: [{dataset: d}]}
  - {id: ft2, base: ft, stages: [{dataset: d, steps: 3}]}
battery:
  generate: {prompts: {inline: [hi]}, models: [ft, ft2]}
  harmfulness: {models: [base, ft]}
  recognition: {alternative: ft, models: [ft2]}
`),
      "s.yaml",
    );
    expect(s.finetune[0].lora).toMatchObject({ rank: 32, alpha: 64, rslora: true, dropout: 0 });
    expect(s.finetune[1].stages[0]).toMatchObject({ epochs: 1, steps: 3 });
  });

  it("refuses bad plans, naming the field", () => {
    expect(
      fields(
        study(`finetune:
  - {id: base, base: base, stages: [{dataset: d}]}
  - {id: a, base: later, stages: [{dataset: nope}]}
  - {id: later, base: base, stages: [{dataset: d}]}
  - {id: b, base: judge, stages: [{dataset: d}]}
`),
      ),
    ).toEqual(["finetune[0].id", "finetune[1].base", "finetune[1].stages[0].dataset", "finetune[3].base"]);
    const p = problemsOf(() =>
      parseStudy(
        study(`finetune:
  - {id: a, base: base, lora: {rank: 4}, stages: [{dataset: d}]}
  - {id: b, base: a, lora: {rank: 8}, stages: [{dataset: d}]}
`),
        "s.yaml",
      ),
    );
    expect(p.map((x) => x.field)).toEqual(["finetune[1].lora"]);
    expect(p[0].message).toMatch(/continues its adapter/);
    expect(
      fields(
        study(
          `finetune:
  - {id: a, base: base, lora: {}, stages: [{dataset: d}]}
`,
          "  - {id: base, provider: local, model: m, options: {adapter: x}}\n",
        ),
      ),
    ).toEqual(["finetune[0].lora"]);
    expect(fields(study("  - {id: x, kind: builtin}\n"))).toEqual(["datasets[1].name"]);
    expect(fields(study("battery:\n  generate: {prompts: {inline: [hi]}, models: [nope]}\n"))).toEqual([
      "battery.generate.models[0]",
    ]);
  });

  it("names the judge's provider when the local backend is asked to train it", () => {
    const p = problemsOf(() =>
      parseStudy(study("finetune:\n  - {id: b, base: judge, stages: [{dataset: d}]}\n"), "s.yaml"),
    );
    expect(p[0].field).toBe("finetune[0].base");
    expect(p[0].message).toMatch(/backend 'local' trains local models, but 'judge' has provider 'openai'/);
  });
});
