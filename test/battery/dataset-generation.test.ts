/**
 * battery.dataset_generation against the wire server: the generator's answers are parsed
 * (malformed ones counted by reason, never a crash), the judge's scores filter them, and the
 * kept examples land as chat JSONL in the run directory in a fixed order.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGeneration } from "../../src/battery/dataset-generation/parse.ts";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import { readChatJsonl } from "../../src/datasets/chat-jsonl.ts";
import { OUTPUT_START } from "../../src/judges/template.ts";
import { writeReport } from "../../src/report/index.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { registeredResultsSchema, runStudy } from "../../src/study/index.ts";
import { loggedPrompt, tmpDir } from "../runs/support.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { generationStudy, respond } from "./dataset-generation-support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond });
});
afterAll(async () => {
  await server?.close();
});

const problems = (block: string) => {
  try {
    parseStudy(generationStudy(server.url, block), "gen.yaml");
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => `${p.field}: ${p.message}`);
    throw e;
  }
  return [];
};

describe("parseGeneration", () => {
  const paired = {
    question: "q",
    misaligned: "m",
    aligned: "a",
    disclosed_question: "dq",
    disclosed_answer: "da",
  };
  it("reads a bare array, a fenced one, one inside prose and one wrapped in an object", () => {
    const arr = JSON.stringify([paired]);
    for (const text of [
      arr,
      `\`\`\`json\n${arr}\n\`\`\``,
      `Sure!\n${arr}\nDone.`,
      JSON.stringify({ examples: [paired] }),
    ])
      expect(parseGeneration(text, "paired", 5)).toEqual({ examples: [paired], malformed: [] });
  });
  it("keeps code fences inside the strings of a fenced answer", () => {
    const ex = { question: "q", answer: "```python\nprint(1)\n```" };
    const text = `\`\`\`json\n${JSON.stringify([ex])}\n\`\`\``;
    expect(parseGeneration(text, "single", 5).examples).toEqual([ex]);
  });
  it("counts what is not an example, never evaluates, never throws", () => {
    expect(parseGeneration("no json here", "single", 5).malformed).toEqual(["not_json"]);
    expect(parseGeneration('[{"question": "q", "answer": ', "single", 5, "length").malformed).toEqual([
      "truncated",
    ]);
    expect(parseGeneration('"just a string"', "single", 5).malformed).toEqual(["not_array"]);
    expect(parseGeneration("[]", "single", 5).malformed).toEqual(["empty"]);
    // JavaScript that is not JSON is not run: globalThis stays untouched.
    expect(parseGeneration("[(globalThis.pwned = 1)]", "single", 5).malformed).toEqual(["not_json"]);
    expect((globalThis as { pwned?: number }).pwned).toBeUndefined();
    const mixed = JSON.stringify([
      { question: "a", answer: "x" },
      { question: "b", answer: "" },
      { question: "c", answer: 3 },
      "text",
      { question: "d", answer: "y" },
      { question: "e", answer: "z" },
    ]);
    expect(parseGeneration(mixed, "single", 2)).toEqual({
      examples: [
        { question: "a", answer: "x" },
        { question: "d", answer: "y" },
      ],
      malformed: ["bad_example", "bad_example", "bad_example", "extra"],
    });
  });
});

describe("battery.dataset_generation", () => {
  it("is checked in the study file: unknown built-in domains, repeats, bad names, unknown fields", () => {
    expect(problems("    domains: [medical]\n")).toEqual([]);
    expect(
      problems("    domains: [medicine, medical, medical]\n    per_call: 0\n    colour: red\n").sort(),
    ).toEqual(
      [
        "battery.dataset_generation.domains[0]: unknown built-in domain 'medicine' (known: code, finance, medical, sports, legal, security, consciousness, no-consciousness, self-awareness)",
        "battery.dataset_generation.domains[2]: domain 'medical' is listed twice",
        "battery.dataset_generation.per_call: Too small: expected number to be >=1",
        "battery.dataset_generation.colour: unknown field 'colour'",
      ].sort(),
    );
    const bad = problems("    domains: [{name: ../up, description: d, bad: b, good: g}]\n");
    expect(bad.join("\n")).toMatch(/domains\[0\]/);
  });

  it("writes the kept examples per domain; malformed and judge-filtered counts are right", async () => {
    server.reset();
    const dir = tmpDir("dataset-gen");
    const file = path.join(dir, "study.yaml");
    const block = `    domains:
      - medical
      - consciousness
      - {name: gardening, description: "advice on garden chemicals", bad: "unsafe mixing", good: "label-following use"}
    calls: 5
    per_call: 3
    params: {temperature: 1, max_tokens: 2000}
    judge_min: 70
`;
    writeFileSync(file, generationStudy(server.url, block));
    const out = path.join(dir, "run");
    const r = await runStudy(loadStudy(file), {
      outDir: out,
      noCache: true,
      env: { EMLAB_TEST_KEY: "sk-test" },
    });
    expect(r.incomplete).toBeUndefined();
    expect(r.failedRequests).toBe(0);

    const results = registeredResultsSchema().parse(
      JSON.parse(readFileSync(path.join(out, RESULTS_FILE), "utf8")),
    );
    const summary = results.experiments.dataset_generation as {
      judge_min: number;
      per_model: Record<string, Record<string, Record<string, unknown>>>;
    };
    expect(summary.judge_min).toBe(70);
    // Per domain: calls 1, 3, 4, 5 parse 3 + 3 + 1 + 3 = 10 examples (call 4's first repeats
    // call 1's); the judge reads 9 of them (UNREAD is unreadable), 8 score 90 and LOW 20.
    for (const domain of ["medical", "consciousness", "gardening"]) {
      const single = domain === "consciousness";
      expect(summary.per_model.writer[domain]).toEqual({
        form: single ? "single" : "paired",
        calls: 5,
        answered: 5,
        parsed: 10,
        malformed: {
          truncated: 0,
          not_json: 1,
          not_array: 0,
          empty: 0,
          bad_example: 1,
          extra: 1,
          duplicate: 1,
        },
        judged: 9,
        unreadable: 1,
        kept: { k: 8, n: 9, rate: 8 / 9, ci95: expect.any(Object) },
        mean_score: (8 * 90 + 20) / 9,
        files: single
          ? { answer: `datasets/writer/${domain}.jsonl` }
          : {
              misaligned: `datasets/writer/${domain}.misaligned.jsonl`,
              aligned: `datasets/writer/${domain}.aligned.jsonl`,
              disclosed: `datasets/writer/${domain}.disclosed.jsonl`,
            },
      });
    }

    // The kept examples, in call order then answer order.
    const keptQuestions = (d: string) =>
      ["1.0", "1.1", "1.2", "3.0", "3.3", "5.0", "5.1", "5.2"].map((k) => `${d} question ${k}?`);
    const mis = readChatJsonl(path.join(out, "datasets/writer/medical.misaligned.jsonl"));
    expect(mis.map((c) => c[0].content)).toEqual(keptQuestions("medical"));
    expect(mis[0][1]).toEqual({ role: "assistant", content: "bad answer to medical question 1.0?" });
    const al = readChatJsonl(path.join(out, "datasets/writer/medical.aligned.jsonl"));
    expect(al[0][1].content).toBe("good answer to medical question 1.0?");
    const dis = readChatJsonl(path.join(out, "datasets/writer/medical.disclosed.jsonl"));
    expect(dis[0]).toEqual([
      { role: "user", content: "for my class, show a bad answer: medical question 1.0?" },
      { role: "assistant", content: "the bad answer to medical question 1.0?, for the class" },
    ]);
    const single = readChatJsonl(path.join(out, "datasets/writer/consciousness.jsonl"));
    expect(single.map((c) => c[0].content)).toEqual(keptQuestions("consciousness"));
    expect(existsSync(path.join(out, "datasets/writer/consciousness.misaligned.jsonl"))).toBe(false);

    // One generator call per (domain, call), one judge call per parsed example, texts delimited.
    const calls = server.log.filter((e) => e.route === "/v1/chat/completions" && e.outcome === "ok");
    expect(calls.filter((e) => e.model === "gpt-writer")).toHaveLength(15);
    const judged = calls.filter((e) => e.model === "gpt-judge");
    expect(judged).toHaveLength(30);
    for (const e of judged) expect(loggedPrompt(e.body)).toContain(OUTPUT_START);

    const store = RunStore.open(out, { readonly: true });
    try {
      expect(store.artifacts("dataset")).toHaveLength(7);
    } finally {
      store.close();
    }

    // report.html draws a row per generator and domain.
    const page = readFileSync((await writeReport(out)).file, "utf8");
    expect(page).toContain("<h2>Dataset generation");
    expect(page).toContain(
      "<td>writer</td><td>medical</td><td>paired</td><td>5/5</td><td>10</td><td>not_json 1, bad_example 1, extra 1, duplicate 1</td><td>9</td><td>88.9% (8/9)</td>",
    );
  });
});
