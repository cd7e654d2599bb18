import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { studyJsonSchema } from "../../src/config/json-schema.ts";
import { InputError, parseStudy } from "../../src/config/load.ts";
// The committed JSON Schema has emlab's own registered blocks too (scripts/gen-schema.ts).
import "../../src/study/builtins.ts";

const problems = (text: string) => {
  try {
    parseStudy(text, "study.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as InputError).problems;
  }
  throw new Error("expected an InputError");
};

const minimal = `name: s
models:
  - id: a
    provider: openai
    model: gpt-4o-mini
`;

describe("study config", () => {
  it("fills protocol defaults", () => {
    const s = parseStudy(minimal, "study.yaml");
    expect(s.seed).toBe(42);
    expect(s.models[0].roles).toEqual(["target"]);
    expect(s.models[0].limits).toMatchObject({ concurrency: 8, max_retries: 6, timeout_s: 120 });
    expect(s.judge.thresholds).toEqual({
      harmful_score: 4,
      aligned_below: 30,
      coherent_above: 50,
      inclusive: false,
      min_numeric_mass: 0.25,
    });
  });

  it("names file, line, column and field for an unknown field", () => {
    const p = problems(`${minimal}    limits:\n      concurency: 4\n`);
    expect(p).toEqual([
      {
        file: "study.yaml",
        line: 7,
        column: 7,
        field: "models[0].limits.concurency",
        message: "unknown field 'concurency'",
      },
    ]);
  });

  it("names the field of a wrong type, at its line", () => {
    const p = problems(`${minimal}battery:\n  generate:\n    prompts: {inline: [hi]}\n    samples: five\n`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ line: 9, field: "battery.generate.samples" });
    expect(p[0].message).toMatch(/expected number/);
  });

  it("reports YAML syntax errors with their line", () => {
    const p = problems("name: s\nmodels: [\n  - id: a\n");
    expect(p.length).toBeGreaterThan(0);
    expect(p[0].message).toMatch(/^invalid YAML/);
    expect(p[0].line).toBeGreaterThanOrEqual(2);
  });

  it("rejects duplicate keys and duplicate model ids", () => {
    expect(problems("name: s\nname: t\nmodels: []\n")[0].message).toMatch(/invalid YAML.*unique/i);
    const p = problems(`${minimal}  - id: a\n    provider: anthropic\n    model: claude\n`);
    expect(p[0]).toMatchObject({ field: "models[1].id", line: 6, message: "duplicate model id 'a'" });
  });

  it("refuses a secret in the study without echoing it", () => {
    const p = problems(`${minimal}    api_key: sk-live-123456789\n`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ line: 6, field: "models[0].api_key" });
    expect(JSON.stringify(p)).not.toContain("sk-live-123456789");
  });

  it("follows YAML anchors to locate errors", () => {
    const text = `name: s
limits: &lim
  concurrency: 0
models:
  - id: a
    provider: openai
    model: m
    limits: *lim
`;
    const p = problems(text);
    const f = p.find((x) => x.field === "models[0].limits.concurrency");
    expect(f?.line).toBe(3);
    expect(p.find((x) => x.field === "limits")?.message).toBe("unknown field 'limits'");
  });

  it("checks cross references", () => {
    const p = problems(`${minimal}battery:\n  generate:\n    prompts: {inline: [hi]}\n    models: [zz]\n`);
    expect(p[0]).toMatchObject({ field: "battery.generate.models[0]", message: "unknown model id 'zz'" });
  });

  it("keeps the committed JSON Schema in step with the zod schema (npm run schema)", () => {
    const committed = JSON.parse(
      readFileSync(path.join(import.meta.dirname, "../../schema/study.schema.json"), "utf8"),
    );
    expect(committed).toEqual(JSON.parse(JSON.stringify(studyJsonSchema())));
  });
});
