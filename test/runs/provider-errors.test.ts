import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { runStudy } from "../../src/study/run-study.ts";
import type { WireServer } from "../support/wire-server.ts";
import { TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

// Nothing is sent: the provider settings are refused before the run directory is touched.
const nowhere = { url: "http://127.0.0.1:9" } as WireServer;
const env = TEST_KEYS_ENV;

/** The study with `edit` applied to its YAML, and the 1-based line of `marker` in the result. */
function studyWith(edit: (yaml: string) => string, marker: string): { file: string; line: number } {
  const file = writeStudy(tmpDir("provider-errors"), nowhere, { prompts: 2, samples: 1 });
  const yaml = edit(readFileSync(file, "utf8"));
  writeFileSync(file, yaml);
  const line = yaml.split("\n").findIndex((l) => l.includes(marker)) + 1;
  expect(line).toBeGreaterThan(0);
  return { file, line };
}

async function problemsOf(file: string) {
  const out = path.join(path.dirname(file), "out");
  const err = await runStudy(loadStudy(file), { outDir: out, noCache: true, env }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect(existsSync(out)).toBe(false);
  return (err as InputError).problems;
}

describe("provider settings errors name the file, line and field", () => {
  it("a provider option of the wrong type", async () => {
    const { file, line } = studyWith(
      (y) => y.replace("  - id: claude\n", "  - id: claude\n    options:\n      timeoutMs: soon\n"),
      "timeoutMs: soon",
    );
    expect(await problemsOf(file)).toEqual([
      expect.objectContaining({
        file,
        line,
        field: "models[1].options.timeoutMs",
        message: expect.stringMatching(/options\.timeoutMs/),
      }),
    ]);
  });

  it("an unknown provider option, located at its key", async () => {
    const { file, line } = studyWith(
      (y) => y.replace("  - id: gpt\n", "  - id: gpt\n    options: {maxTokenField: max_tokens}\n"),
      "maxTokenField",
    );
    expect(await problemsOf(file)).toEqual([
      expect.objectContaining({ file, line, field: "models[0].options.maxTokenField" }),
    ]);
  });

  it("batch: true on a provider without a batch API, located at the flag", async () => {
    const { file, line } = studyWith(
      (y) => y.replace("    provider: openai\n", "    provider: vllm\n    batch: true\n"),
      "batch: true",
    );
    expect(await problemsOf(file)).toEqual([
      expect.objectContaining({
        file,
        line,
        field: "models[0].batch",
        message: "provider vllm has no batch API (set batch: false)",
      }),
    ]);
  });

  it("a base URL that is not http(s)", async () => {
    const { file, line } = studyWith(
      (y) => y.replace(/base_url: http:\/\/127\.0\.0\.1:9\n/, "base_url: ftp://example.org\n"),
      "ftp://",
    );
    expect(await problemsOf(file)).toEqual([
      expect.objectContaining({
        file,
        line,
        field: "models[1].base_url",
        message: expect.stringMatching(/http/),
      }),
    ]);
  });
});
