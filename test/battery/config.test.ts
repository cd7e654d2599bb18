import { describe, expect, it } from "vitest";
import { InputError, parseStudy } from "../../src/config/load.ts";

const head = `name: s
models:
  - {id: a, provider: openai, model: m}
  - {id: j, provider: openai, model: m, roles: [judge]}
`;

const problems = (text: string) => {
  try {
    parseStudy(text, "study.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as InputError).problems;
  }
  throw new Error("expected an InputError");
};

describe("battery config", () => {
  it("fills the protocol defaults", () => {
    const s = parseStudy(
      `${head}battery:\n  harmfulness: {}\n  alignment: {}\n  self_assessment: {}\n`,
      "study.yaml",
    );
    expect(s.battery.harmfulness).toMatchObject({
      enabled: true,
      samples: 10,
      params: { temperature: 1, top_p: 1, max_tokens: 600 },
      prompts: { builtin: "harm-prompts" },
    });
    expect(s.battery.alignment?.samples).toBeUndefined(); // the question file's samples_per_paraphrase
    expect(s.battery.self_assessment?.dimensions).toHaveLength(6);
    expect(s.battery.self_assessment?.formats).toEqual(["decision", "free", "likert", "numerical"]);
    expect(s.judge).toMatchObject({ logprobs: "auto", top_logprobs: 20 });
  });

  it("judged experiments need a judge; recognition needs harmfulness", () => {
    const noJudge = `name: s\nmodels:\n  - {id: a, provider: openai, model: m}\nbattery:\n  alignment: {}\n`;
    expect(problems(noJudge)[0]).toMatchObject({ field: "judge.model" });
    expect(problems(`${head}battery:\n  recognition: {}\n`)[0]).toMatchObject({
      field: "battery.recognition",
    });
  });

  it("names unknown model ids and fields with their line", () => {
    const p = problems(`${head}battery:\n  harmfulness:\n    models: [zz]\n    sampels: 3\n`);
    expect(p).toContainEqual(expect.objectContaining({ line: 8, field: "battery.harmfulness.sampels" }));
    expect(p).toContainEqual(
      expect.objectContaining({ field: "battery.harmfulness.models[0]", message: "unknown model id 'zz'" }),
    );
  });
});
